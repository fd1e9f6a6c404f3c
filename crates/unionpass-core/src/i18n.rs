//! Every user-facing string, in zh-CN (first) and English.
//!
//! The UI and the shell look words up by [`Msg`]; placeholders are written `{name}` and filled with
//! [`fill`]. A test checks that every message has both languages and the same placeholders.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Lang {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Lang> {
        match tag {
            "zh-CN" | "zh" | "zh-Hans" => Some(Lang::ZhCn),
            "en" | "en-US" | "en-GB" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language's own name, for the language switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::ZhCn => "简体中文",
            Lang::En => "English",
        }
    }
}

macro_rules! messages {
    ($($key:ident => $zh:literal, $en:literal;)*) => {
        /// A user-facing message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Msg { $($key),* }

        impl Msg {
            pub const ALL: &'static [Msg] = &[$(Msg::$key),*];

            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Msg::$key, Lang::ZhCn) => $zh, (Msg::$key, Lang::En) => $en,)*
                }
            }
        }
    };
}

messages! {
    AppName => "工会通", "UnionPass";
    Tagline => "会员服务，随身携带", "Your union membership, in your pocket";
    // login
    LoginTitle => "会员登录", "Member sign-in";
    ServerUrl => "服务器地址", "Server address";
    MemberNo => "会员号", "Member number";
    // the account card's line under the name: the number with its label, as the passport has it
    Password => "密码", "Password";
    LoginButton => "登录", "Sign in";
    LoggingIn => "正在登录…", "Signing in…";
    // navigation
    TabPassport => "护照", "Passport";
    TabMe => "我的", "Me";
    // passport
    PassportTitle => "电子护照", "Electronic passport";
    PassportHint => "在活动入口出示此二维码，由工作人员扫码签到。", "Show this QR code at the event entrance; staff scan it to check you in.";
    PassportQrLabel => "会员电子护照二维码", "Member passport QR code";
    WorkplaceUnion => "所属工会", "Union";
    ValidUntil => "有效期至", "Valid until";
    RoleMember => "会员", "Member";
    RoleStaff => "工作人员", "Staff";
    // where the code was: every scanner would refuse it
    PassportNoCode => "护照已过期，不再显示入场二维码。请联网同步以更新。", "This passport has expired, so no entry code is shown. Connect and sync to renew it.";
    PassportMissing => "还没有护照数据，请联网同步。", "No passport yet. Connect to the internet and sync.";
    Loading => "正在加载…", "Loading…";
    // sync status
    SyncedAt => "已同步 {time}", "Synced {time}";
    LastSyncedAt => "上次同步 {time}", "Last synced {time}";
    Syncing => "正在同步…", "Syncing…";
    Offline => "离线", "Offline";
    ChangesWaiting => "{n} 项更改待同步", "{n} change waiting|{n} changes waiting";
    NeverSynced => "尚未同步", "Not synced yet";
    SyncNow => "立即同步", "Sync now";
    OfflineHint => "当前无法连接服务器，显示的是本机保存的数据。", "The server cannot be reached; you are seeing the data saved on this device.";
    // me
    Account => "账户", "Account";
    Language => "语言", "Language";
    SyncSection => "同步", "Sync";
    ServerSection => "服务器", "Server";
    Logout => "退出登录", "Sign out";
    LogoutLoses => "还有 {n} 项更改没有上传到工会服务器（{what}）。退出时若连不上服务器，它们会从本机清除，不会再上传。请先联网同步。", "{n} change has not reached the union's server yet ({what}). If the server cannot be reached when you sign out, it is removed from this device for good. Sync first while online.|{n} changes have not reached the union's server yet ({what}). If the server cannot be reached when you sign out, they are removed from this device for good. Sync first while online.";
    PendingCheckIns => "签到 {n} 条", "{n} check-in|{n} check-ins";
    PendingCouponUses => "用券 {n} 次", "{n} coupon use|{n} coupon uses";
    PendingRedemptions => "积分兑换 {n} 笔", "{n} points redemption|{n} points redemptions";
    PendingFeedback => "活动评价 {n} 条", "{n} activity rating|{n} activity ratings";
    PendingVotes => "征集投票 {n} 次", "{n} poll vote|{n} poll votes";
    PendingLanguage => "语言设置", "the language choice";
    PendingDeviceRemovals => "移除设备 {n} 台", "{n} device removal|{n} device removals";
    PendingOther => "其他更改 {n} 项", "{n} other change|{n} other changes";
    LogoutAnyway => "仍然退出", "Sign out anyway";
    LogoutConfirm => "退出后，本机保存的会员数据将被清除。确定退出吗？", "Signing out removes your member data from this device. Sign out?";
    Cancel => "取消", "Cancel";
    SecuritySection => "账户安全", "Account security";
    ChangePassword => "修改密码", "Change password";
    CurrentPassword => "当前密码", "Current password";
    NewPassword => "新密码（至少 8 位）", "New password (8 characters or more)";
    NewPasswordAgain => "再次输入新密码", "New password again";
    PasswordsDiffer => "两次输入的新密码不一致。", "The two new passwords differ.";
    PasswordChanged => "密码已修改；其他设备上的登录已结束：{n}。", "Password changed; sessions ended on other devices: {n}.";
    // a forgotten password: a one-time code from union staff
    ForgotPassword => "忘记密码？", "Forgot your password?";
    ResetTitle => "重设密码", "Reset your password";
    ResetHint => "请到所在工会，由工作人员核对身份后领取重设码（24 小时内有效，只能用一次），填在下面并设置新密码。重设后，你在所有设备上的登录都会结束。", "Ask the staff of your workplace union for a reset code: they check who you are first. It works once, within 24 hours. Enter it below with a new password. Resetting ends your sessions on every device.";
    ResetCode => "重设码（12 位数字）", "Reset code (12 digits)";
    ResetButton => "重设密码并登录", "Reset password and sign in";
    Resetting => "正在重设…", "Resetting…";
    BackToSignIn => "返回登录", "Back to sign-in";
    ResetCodeFormat => "重设码是 12 位数字，请核对。", "A reset code has 12 digits. Please check it.";
    ResetCodeWrong => "重设码不正确、已过期或已经用过。请核对后再试，或向工会重新领取。", "The reset code is wrong, has expired or was already used. Check it, or ask your union for a new one.";
    SignOutEverywhere => "退出所有设备", "Sign out everywhere";
    SignOutEverywhereHint => "手机丢了？这会结束你在所有设备（包括本机）上的登录。", "Lost a phone? This ends your sessions on every device, this one included.";
    SignOutEverywhereConfirm => "确定结束所有设备上的登录吗？本机还没上传的更改会先上传，之后需要重新登录。", "End your sessions on every device? Changes not yet uploaded from this device go up first; then you will need to sign in again.";
    HeldSameAccount => "原来的账号", "the same account";
    HeldChanges => "你的登录已结束，但本机还有 {n} 项更改没有上传（{what}），已为你保留。用 {member} 重新登录后会自动上传；用其他账号登录则会清除。", "Your session has ended. {what} made on this device has not been uploaded yet and is kept. Sign in again as {member} to upload it; signing in with another account deletes it.|Your session has ended. {n} changes made on this device have not been uploaded yet ({what}) and are kept. Sign in again as {member} to upload them; signing in with another account deletes them.";
    SessionEndedWhy => "为什么会这样？", "Why did this happen?";
    SessionEndedCauses => "可能的原因：在其他设备上点了「退出所有设备」、修改了密码或移除了本机；会员资格被暂停或账号已注销；或长时间未使用本应用。", "Possible causes: on another device you signed out everywhere, changed your password or removed this device; your membership was suspended or your account closed; or the app went unused for a long time.";
    OnlineOnly => "需要联网。", "Needs the network.";
    CheckinRefused => "未记入：{reason}", "Not recorded: {reason}";
    // errors: what happened, and what to do next
    ErrInvalidCredentials => "会员号或密码不正确，请重新输入。", "The member number or password is wrong. Please try again.";
    ErrSessionExpired => "登录已失效，请重新登录。", "Your session has ended. Please sign in again.";
    ErrForbidden => "无权访问该内容。", "You do not have access to this.";
    ErrRateLimited => "尝试次数过多，请稍后再试。", "Too many attempts. Please wait a moment and try again.";
    ErrRateLimitedWait => "尝试次数过多，请 {wait}后再试。", "Too many attempts. Try again in {wait}.";
    ErrServer => "服务器暂时出现问题，请稍后再试。", "The server has a problem right now. Please try again later.";
    ErrOffline => "无法连接服务器，请检查网络后重试。", "Cannot reach the server. Check your connection and try again.";
    ErrUpdateApp => "服务器的回复无法识别，请将应用更新到最新版本。", "The server's answer was not understood. Please update the app.";
    ErrServerUrl => "服务器地址格式不正确，应以 http:// 或 https:// 开头。", "The server address is not valid; it must start with http:// or https://.";
    ErrNotLoggedIn => "请先登录。", "Please sign in first.";
    ErrNoSecureStore => "此设备没有可用的安全存储，无法安全保存登录信息，因此不能登录。请在手机或电脑的正式版本上使用。", "This device has no secure store to keep your sign-in safe, so you cannot sign in here. Use the app on a supported phone or computer.";
    ErrClientTooOld => "此版本的工会通已停止服务，请到“我的”页面查看下载地址，更新后即可继续使用。已保存的数据不会丢失。", "This version of UnionPass is no longer served. See Me for where to download the update; nothing saved is lost.";
    UpdateAvailable => "发现新版本 {version}", "New version {version} available";
    UpdateRequired => "需要更新：此版本已停止服务，请安装 {version} 或更高版本。", "Update needed: this version is no longer served. Install {version} or newer.";
    UpdateDownload => "下载地址", "Download";
    UpdateNoDownload => "请向所在工会索取安装包。", "Ask your union for the installer.";
    UpdateInstall => "安装新版本", "Install the new version";
    UpdateInstalling => "正在下载并安装…", "Downloading and installing…";
    UpdateInstalled => "已安装 {version}，正在重新启动…", "Installed {version}; restarting…";
    UpdateNoPackage => "工会没有为这种安装方式提供更新包，需要手动安装新版本。", "The union offers no update package for this kind of installation; the new version has to be installed by hand.";
    UpdateRetry => "重试安装", "Try installing again";
    AboutApp => "关于工会通", "About UnionPass";
    AppVersion => "当前版本 {version}", "Version {version}";
    ErrKeyring => "系统安全存储（钥匙串）不可用，请解锁后重试。", "The system's secure store (keyring) is unavailable. Unlock it and try again.";
    ErrStorage => "本机数据读写失败，请重启应用；若仍失败，请退出登录后重新登录。", "Local data could not be read or written. Restart the app; if it persists, sign out and in again.";
    ErrStorageFull => "存储空间已满，请清理空间后重试，已保存的数据不会丢失。", "Storage is full. Free some space and try again; nothing saved is lost.";
    ErrDatabaseTooNew => "本机数据来自更新版本的应用，请将应用更新到最新版本。", "The data on this device was written by a newer version of the app. Please update the app.";
    DataKept => "你的数据仍完整保存在本机，安装新版本后即可继续使用。", "All your data is still on this device; install the newer version to carry on.";
    KeptPassportHint => "更新之前，仍可在活动入口出示下面的电子护照签到。", "Until you update, you can still show the passport below at the door to check in.";
    KeptPassportExpired => "这张电子护照已过期，更新应用并同步后才会续期。", "This passport has expired; it is renewed once the app is updated and syncs.";
    ErrInvalidInput => "请检查填写的内容。", "Please check what you entered.";
    ErrFieldRequired => "请填写{field}。", "Please enter your {field}.";
    ErrSessionEnded => "你的登录已结束，本机的会员数据已清除，请重新登录。", "Your session has ended and this device's member data was cleared. Please sign in again.";
    ErrKeyReused => "这次操作的编号已被另一项操作使用过，请重新操作一次。", "This action's id was already used for a different action; please do it again.";
    ErrTooLarge => "发送的内容过大，请减少后重试。", "What was sent is too large; send less and try again.";
    ErrCheckinProof => "这条签到来自旧版扫码应用，缺少护照凭证，服务器未记入；请更新应用后重新扫码。", "This check-in came from an older scanner app without the passport proof and was not recorded; update the app and scan the member again.";
    ErrCheckinProofReused => "这个二维码已在另一场活动签到过，同一个二维码只能签到一场，本场未记入。如会员确在本场，请扫描其手机上的实时二维码。", "This code was already used to check in at another event, and one code checks in at one event only; not recorded here. If the member is here, scan the live code on their phone.";
    ErrCheckinOutsideEvent => "扫码时间不在活动时间内（或扫码设备的时间不准），签到未记入。", "The scan time is outside the event's hours (or the scanner's clock is wrong); the check-in was not recorded.";
    ErrWeakPassword => "新密码至少 8 位，且不能与会员号相同。", "The new password needs at least 8 characters and must differ from your member number.";
    ErrInsecureServerUrl => "为保护你的密码，服务器地址必须以 https:// 开头（本机上的服务器除外）。", "To protect your password, the server address must start with https:// (except a server on this computer).";
    ErrDeviceNotEnrolled => "本机尚未登记护照密钥，请退出后重新登录。", "This device has no passport key yet. Sign out and sign in again.";
    // live passport
    PassportLiveHint => "二维码每 30 秒更新一次，截图很快失效。", "The code changes every 30 seconds; a screenshot stops working soon.";
    PassportRefreshIn => "{s} 秒后更新", "Refreshes in {s} s";
    // devices
    DevicesSection => "登录过的设备", "Signed-in devices";
    ThisDevice => "本机", "This device";
    EnrolledAt => "登记于 {time}", "Enrolled {time}";
    Revoke => "移除此设备", "Remove device";
    RevokeConfirm => "移除后，该设备上的电子护照立即失效，那台设备需要重新登录才能再用。你的账户不受影响。确定移除吗？", "The passport on that device stops working at once, and it must sign in again to be used. Your account is not affected. Remove it?";
    RevokeQueued => "已提交移除，联网后生效。", "Removal queued; it takes effect when online.";
    NoDevices => "联网同步后显示设备列表。", "Sync to see your devices.";
    // scanner
    TabScanner => "扫码签到", "Check-in";
    ScannerTitle => "活动签到", "Event check-in";
    PickEvent => "选择活动", "Choose an event";
    DoorEventEnded => "此活动已于 {time} 结束。请确认选对了活动。", "This event ended {time}. Check that you chose the right one.";
    NoEvents => "暂无可签到的活动，请联网同步。", "No events to check in to. Connect and sync.";
    TrustAge => "验证数据更新于 {age}前", "Verification data is {age} old";
    TrustJustNow => "验证数据刚刚更新", "Verification data was just updated";
    DoorListAge => "报名名单更新于 {age}前。会员手机显示有名额时，请联网同步后再扫；无法联网时，核对后点“放行并记录”。", "The sign-up list is {age} old. If their phone shows a place, sync and scan again; with no network, check it, then tap \"Let in and record\".";
    DoorListJustNow => "报名名单刚刚更新，名单上没有此会员的名额。会员手机显示有名额时（可能刚报上），核对后点“放行并记录”。", "The sign-up list was just updated and has no place for them. If their phone shows one (it may be new), check it, then tap \"Let in and record\".";
    LetIn => "放行并记录", "Let in and record";
    // a refusal by the door's sign-up list, in one line under the red verdict, which says the rest
    DoorNotSignedUp => "没有报名这个活动", "did not sign up for this activity";
    DoorStillWaitlisted => "仍在候补，尚无名额", "still on the waitlist, no place yet";
    // {count}: the door's count as its line says it (`CheckedInCount`)
    LetInFull => "名额已满（{count}）：放行后将超出名额。", "Full ({count}): letting them in goes over capacity.";
    LetInDone => "已手动放行（家属请另行清点）。联网同步后，服务器按报名名单核对这次签到。", "Let in by hand (count any companions yourself). When this scanner syncs, the server checks this check-in against its sign-up list.";
    ByHand => "手动放行", "Let in by hand";
    ScannerSettings => "扫码设置", "Scanner settings";
    TrustNever => "尚未获取验证数据，请联网同步。", "No verification data yet. Connect and sync.";
    TrustStale => "验证数据已超过 {days} 天未更新，请尽快联网同步，以获取最新的注销名单。", "Verification data is older than {days} days. Sync soon to get the latest revocations.";
    TrustMaxAge => "提醒阈值", "Warn after";
    Days => "{n} 天", "{n} day|{n} days";
    Hours => "{n} 小时", "{n} hour|{n} hours";
    Minutes => "{n} 分钟", "{n} minute|{n} minutes";
    Seconds => "{n} 秒", "{n} second|{n} seconds";
    ScanInputLabel => "扫码枪输入", "Barcode scanner input";
    ScanInputHint => "连接扫码枪后在此处扫描，或粘贴二维码内容后按回车。", "Scan here with a hardware scanner, or paste the code and press Enter.";
    ScanImage => "从图片识别", "Scan an image";
    ScanCamera => "打开摄像头", "Start camera";
    StopCamera => "关闭摄像头", "Stop camera";
    CameraUnavailable => "无法使用摄像头，请检查权限，或改用扫码枪、图片。", "The camera is unavailable. Check permissions, or use a scanner or an image.";
    NoQrFound => "图片中未找到二维码，请重试。", "No QR code found in the image. Try again.";
    CheckedIn => "签到成功", "Checked in";
    // which number is which, said: "3 / 3" left staff to guess the second was the places
    CheckedInCount => "已入场 {n} 人 · 名额 {cap}", "{n} checked in · capacity {cap}";
    CheckedInCompanions => "含家属 {n} 人", "Including {n} companion|Including {n} companions";
    CheckedInByHand => "手动放行待核对 {n} 人", "{n} let in by hand, unverified";
    CheckedInOver => "超出名额 {n} 人", "{n} over capacity";
    LetInTitle => "已手动放行（待核对）", "Let in by hand (unverified)";
    CheckInLog => "签到记录", "Check-ins";
    NoCheckIns => "还没有人签到。扫到的会员会按时间倒序列在这里。", "Nobody has checked in yet. Each scan is listed here, newest first.";
    NotUploaded => "待同步", "Waiting to sync";
    Uploaded => "已上传", "Uploaded";
    MadeHereWaiting => "本机在本场的签到有 {n} 条待上传，联网后会自动上传；上传前请勿卸载应用或退出登录。", "{n} check-in made here is waiting to upload. It uploads automatically once online; until then, do not uninstall the app or sign out.|{n} check-ins made here are waiting to upload. They upload automatically once online; until then, do not uninstall the app or sign out.";
    MadeHereUploaded => "本机在本场的 {n} 条签到已全部上传。", "The {n} check-in made here has been uploaded.|All {n} check-ins made here have been uploaded.";
    // beside the door's upload line when the sync line counts more ({what}: `pending_what`)
    OtherChangesWaiting => "本机另有 {n} 项其他更改待同步（{what}），已计入顶部的数字。", "{n} other change on this device is waiting too ({what}); the count at the top includes it.|{n} other changes on this device are waiting too ({what}); the count at the top includes them.";
    ConflictsTitle => "重复签到（不同设备）", "Checked in on two scanners";
    ConflictLine => "{member}：{first} 由 {a} 签到，{second} 又由 {b} 签到", "{member}: checked in {first} by {a}, again {second} by {b}";
    ScanFailed => "签到未通过", "Check-in refused";
    ScanRepeat => "已签到过", "Already checked in";
    ScanCompanions => "+{n} 位家属", "+{n} companion|+{n} companions";
    ScanBadFormat => "这不是工会通护照二维码。", "This is not a UnionPass passport code.";
    ScanUnknownKey => "无法识别签发密钥，请联网同步验证数据后重试。", "Unknown issuing key. Sync the verification data and try again.";
    ScanBadSignature => "护照签名无效，可能是伪造的。", "The passport signature is invalid; it may be forged.";
    ScanBadDeviceSignature => "设备签名无效：该护照不是由其登记设备出示的。", "Invalid device signature: the passport is not shown by its enrolled device.";
    ScanNotYetValid => "护照尚未生效。", "The passport is not valid yet.";
    ScanExpired => "护照已过期，请会员联网更新。", "The passport has expired; the member should connect to renew it.";
    ScanStale => "二维码已过时（可能是截图），请会员出示手机上的实时二维码。", "The code is out of date (a screenshot?). Ask for the live code on the member's phone.";
    ScanRevokedDevice => "该设备已被移除，请会员用仍登记的设备出示护照。", "This device was revoked; the member must use an enrolled device.";
    ScanRevokedMember => "该会员的护照已被注销。", "This member's passport was revoked.";
    ScanNotEligible => "该会员不属于本活动的参加范围。", "This member is not eligible for this event.";
    ScanAlreadyCheckedIn => "{time} 已由{device}签到过，可直接放行，无需再扫。", "Already checked in {time} by {device}; let them in, no need to scan again.";
    ScannerThis => "本机", "this scanner";
    ScannerNamed => "扫码设备 {id}", "scanner {id}";
    // a check-in log's row made on another scanner, by the staff member the server named
    ScannedByStaff => "{name} 扫码", "scanned by {name}";
    // wallet
    TabWallet => "卡券", "Wallet";
    WalletTitle => "我的卡券", "My wallet";
    ExpiringSoon => "即将过期", "Expiring soon";
    AllCategories => "全部类别", "All categories";
    AllStatuses => "全部状态", "All statuses";
    FilterCategory => "类别", "Category";
    FilterStatus => "状态", "Status";
    // the activity list's filters, for screen readers: whose activities, and when
    FilterScope => "范围", "Whose";
    FilterDate => "日期", "When";
    ClearFilters => "清除筛选", "Clear filters";
    GoGrab => "去抢券", "Go grab coupons";
    WalletNone => "还没有卡券。抢到的券会放在这里。", "Your wallet is empty. Coupons you grab land here.";
    CatBike => "单车", "Bike";
    CatMeal => "餐饮", "Meals";
    CatTaxi => "打车", "Taxi";
    CatCleaning => "保洁", "Cleaning";
    CatLaundry => "洗衣", "Laundry";
    CatCinema => "观影", "Cinema";
    CatOther => "其他", "Other";
    StatusUsable => "可使用", "Ready to use";
    StatusNotYetValid => "未生效", "Not yet valid";
    StatusUsed => "已使用", "Used";
    StatusExpired => "已过期", "Expired";
    StatusVoided => "已作废", "Withdrawn";
    VoidedAt => "工会已于 {time} 作废，不能再使用", "Withdrawn by the union {time}; it can no longer be used";
    WalletSearch => "搜索卡券名称或券码", "Search by name or code";
    WalletEmpty => "没有符合条件的卡券。换个条件试试，或清除筛选。", "No coupons match. Try other filters, or clear them.";
    WalletCount => "共 {n} 张", "{n} coupon|{n} coupons";
    FaceValue => "面值 {v} 元", "Face value ¥{v}";
    ValidPeriod => "{from} 至 {until}", "{from} to {until}";
    UsageCode => "券码", "Code";
    UsageHint => "向商家出示此二维码或券码。", "Show this QR code or the code to the merchant.";
    MarkUsed => "标记为已使用", "Mark as used";
    MarkUsedConfirm => "标记后这张券就不能再用了，而且无法撤销。确定已在商家用掉了吗？", "Once marked, this coupon cannot be used again, and this cannot be undone. Did you use it at the merchant?";
    MarkUsedYes => "确定，已使用", "Yes, I used it";
    ExpiresToday => "今天到期", "Expires today";
    DaysLeft => "还剩 {n} 天", "{n} day left|{n} days left";
    ValidUntilDate => "有效期至 {date}", "Valid until {date}";
    UsableFrom => "{date} 起可用", "Valid from {date}";
    ExpiredOn => "已于 {date} 过期", "Expired on {date}";
    Copy => "复制", "Copy";
    Copied => "已复制", "Copied";
    CopyByHand => "已选中，请按 Ctrl+C 复制", "Selected; press Ctrl+C to copy";
    UsePending => "已使用（待同步）", "Used (waiting to sync)";
    UsedAt => "使用于 {time}", "Used {time}";
    Terms => "使用说明", "Terms";
    Back => "返回", "Back";
    LoadMore => "加载更多", "Show more";
    // grab calendar
    TabGrab => "抢券", "Grab";
    GrabTitle => "福利抢券", "Coupon grabs";
    NoCampaigns => "暂无即将开抢的福利券。新的福利发布后会出现在这里，可以设提醒。", "No upcoming coupons. New ones appear here when published, and you can set a reminder.";
    ReleaseAt => "{time} 开抢", "Opens {time}";
    StartsIn => "距开抢 {left}", "Opens in {left}";
    EndsAt => "{time} 截止", "Ends {time}";
    EndedAt => "已于 {time} 结束", "Ended {time}";
    PerMemberLimit => "每人限 {n} 张", "Limit {n} per member";
    StockGone => "已抢光", "None left";
    CountdownDays => "{d} 天 {h} 小时", "{d} d {h} h";
    CountdownHours => "{h} 小时 {m} 分", "{h} h {m} min";
    CountdownMinutes => "{m} 分 {s} 秒", "{m} min {s} s";
    CountdownSeconds => "{s} 秒", "{s} s";
    DayToday => "今天 {time}", "today {time}";
    DayTomorrow => "明天 {time}", "tomorrow {time}";
    DayYesterday => "昨天 {time}", "yesterday {time}";
    // today's clock inside a sentence ("11:03 已签到过", "checked in at 11:03")
    AtClock => "{time}", "at {time}";
    WeekdayMon => "周一", "Mon";
    WeekdayTue => "周二", "Tue";
    WeekdayWed => "周三", "Wed";
    WeekdayThu => "周四", "Thu";
    WeekdayFri => "周五", "Fri";
    WeekdaySat => "周六", "Sat";
    WeekdaySun => "周日", "Sun";
    GrabSoldOutButton => "已抢光", "Sold out";
    GrabHeldButton => "已领取 · 查看卡券", "Got it · See wallet";
    GrabNotEligibleButton => "仅限指定工会", "Other unions only";
    GrabOnlyFor => "仅限{union}", "Only for {union}";
    GrabOnlyForMany => "仅限{union}等 {n} 家工会", "Only for {union} and others ({n} unions)";
    GrabTooEarly => "还没开抢，按钮变红后再点；现在点不会提交。", "Not open yet: tap again when the button turns red; nothing was sent.";
    GrabEndedButton => "已结束", "Ended";
    GrabOffline => "当前离线，联网后才能抢券。", "You are offline; connect to grab.";
    NoCampaignsOffline => "暂无福利券信息。联网后会自动同步。", "No coupons to show yet. They sync when you are online.";
    LiveNow => "抢券进行中", "Open now";
    TotalStock => "共 {n} 张", "{n} in total";
    StockLeft => "剩余 {left} / {n} 张", "{left} of {n} left";
    GrabButton => "立即抢", "Grab";
    GrabWaitButton => "等待开抢", "Not open yet";
    RedeemFillFirst => "填好号码并选择金额", "Enter the number and choose an amount";
    AmountsOutOfReach => "置灰的金额超出本月额度或可用积分。", "Greyed amounts are over this month's limit or your available points.";
    Grabbing => "正在抢…", "Grabbing…";
    GrabGranted => "抢到了！已放入我的卡券。", "Got it! It is in your wallet.";
    GrabSoldOut => "本轮已全部领完。", "All coupons of this round have been taken.";
    GrabLimit => "你已领取过这张券，已达上限。", "You have reached the limit for this coupon.";
    GrabNotStarted => "还没开始，请在开抢后再试。", "Not open yet; try again when it opens.";
    GrabEnded => "活动已结束。", "This campaign has ended.";
    GrabNotEligible => "你不在本次福利的领取范围内。", "You are not eligible for this campaign.";
    GrabRetry => "服务器没有及时回应。请求已保存，正在用同一请求自动重试，不会重复领取。", "The server did not answer in time. Your request is saved and is being retried as the same request; you cannot get two.";
    ClockOffset => "倒计时已按服务器时间校准", "Countdowns follow the server's clock";
    ClockUnknown => "尚未校准服务器时间", "Server time not measured yet";
    ErrCouponExpired => "这张券已过期，无法使用。", "This coupon has expired and cannot be used.";
    ErrCouponVoided => "工会已作废这张券，不能再使用。如有疑问，请联系所在工会。", "Your union has withdrawn this coupon; it can no longer be used. Ask your union if you have questions.";
    ErrCouponNotYetValid => "这张券尚未生效，请在有效期内使用。", "This coupon is not valid yet; use it within its validity.";
    ErrReminderTooLate => "离开抢已不足所选提前时间，请选更短的提前量。", "The release is closer than that lead time; choose a shorter one.";
    ErrCampaignGone => "该活动已取消或已不在日历中，请同步后再看。", "This campaign was cancelled or is no longer in the calendar; sync and look again.";
    ErrAutostart => "无法更改开机启动设置，请在系统设置的“启动项”中手动添加工会通。", "Could not change the start-at-login setting; add UnionPass to your system's startup items yourself.";
    ErrUpdateNotPackaged => "这份工会通不是从安装包安装的，无法自动更新，需要手动安装新版本。", "This copy of UnionPass was not installed from a package, so it cannot update itself; the new version has to be installed by hand.";
    // said on 我的 and on the screen of a store too new for this copy: "keeps working" would be
    // false on the second
    ErrUpdateSignature => "下载的更新没有工会的发布签名，已停止安装；原版本不受影响。", "The downloaded update is not signed by the union, so it was not installed; your current version still works.";
    ErrUpdateDownloadFailed => "新版本没有下载成功（更新服务器出错），原版本不受影响。", "The new version could not be downloaded (the update server failed); your current version still works.";
    ErrUpdateInstallFailed => "更新没有安装（授权被取消，或系统软件包管理器出错），原版本不受影响。", "The update was not installed (the password prompt was cancelled, or the system's package manager failed); your current version still works.";
    ErrInvalidMobile => "请输入正确的 11 位手机号。", "Enter a valid 11-digit mainland mobile number.";
    ErrInvalidAccount => "请输入电费单上的 10 位户号。", "Enter the 10-digit account number from your electricity bill.";
    ErrAmountNotOffered => "请从列出的金额中选择。", "Choose one of the listed amounts.";
    ErrOutOfStock => "这件商品已兑完，请选择其他商品。", "This item is out of stock; choose another.";
    ErrCapReached => "本月该项兑换已达上限，下月 1 日起可再兑换。", "This month's limit for this kind is reached; try again from the 1st.";
    ErrInsufficientPoints => "可用积分不足，兑换未进行，积分未扣除。", "Not enough available points; nothing was redeemed or deducted.";
    ErrReauthRequired => "大额兑换需要再次输入密码（需联网）。", "Large redemptions need your password again (online).";
    ErrPriceChanged => "兑换价格已调整，请查看新价格后重新提交。", "The price changed; check the new price and submit again.";
    ErrSignupNotOpen => "报名还没开始，请在开始报名后再试。", "Sign-up has not opened yet; try again when it opens.";
    ErrSignupClosed => "报名已截止。", "Sign-up has closed.";
    ErrSignupFull => "名额和候补都已满，这次报不上了；可以看看其他活动。", "All places and the waitlist are taken; have a look at other activities.";
    ErrTooManyCompanions => "携带家属人数超出本活动允许的范围，请减少后再报名。", "More companions than this activity allows; bring fewer and sign up again.";
    ErrAlreadySignedUp => "你已经报名了这个活动（或在候补中），无需重复报名。", "You are already signed up (or on the waitlist) for this activity.";
    ErrNoShowBanned => "你近期报名后多次未到场，暂时不能报名热门活动。", "You recently signed up and did not come more than once, so popular activities are closed to you for now.";
    ErrCancelTooLate => "已过取消截止时间，不能再取消；如不能到场，请联系工会。", "The cancellation deadline has passed; if you cannot come, tell your union.";
    ErrActivityCancelled => "这个活动已被工会取消。", "This activity was cancelled by the union.";
    ErrFeedbackNotAttended => "签到参加过活动后才能评价。", "You can rate an activity after checking in to it.";
    ErrFeedbackTooEarly => "活动结束后才能评价。", "You can rate an activity once it has ended.";
    ErrFeedbackLocked => "评价提交超过 7 天，已不能修改。", "Feedback can be changed for 7 days; that time has passed.";
    ErrNotSignedUp => "该会员没有报名这个活动（本活动须报名），不能入场。", "This member did not sign up for this activity, which needs a sign-up.";
    ErrStillWaitlisted => "该会员仍在候补中，没有名额，不能入场。", "This member is still on the waitlist and has no place.";
    ErrPollClosed => "这个征集已经结束，不能再投票了。", "This poll has closed; votes are no longer taken.";
    PollsTitle => "需求征集", "What should we organise?";
    PollClosesAt => "{time} 截止", "Closes {time}";
    PollVote => "投票", "Vote";
    PollChange => "改投", "Change my vote";
    PollVotes => "{n} 票", "{n} vote|{n} votes";
    PollYourVote => "你的选择", "your choice";
    PollPending => "已保存，联网后提交", "Saved; sent when you are online";
    PollResultsAfter => "投票后可以看到大家的选择。", "You'll see everyone's choices after you vote.";
    PollResultsOffline => "联网后显示投票结果。", "Results show when you are online.";
    PollVoted => "你已投票", "You have voted";
    PollNotVoted => "你还没有投票", "You have not voted yet";
    PollClosed => "已截止", "Closed";
    PollShow => "去投票", "Vote now";
    PollSeeResults => "看结果", "See results";
    PollHide => "收起", "Hide";
    TabPoints => "积分", "Points";
    PointsTitle => "我的积分", "My points";
    PointsAvailable => "可用积分", "Available points";
    PointsPosted => "合计 {n}", "Total {n}";
    PointsPending => "兑换办理中 {n}", "In redemptions being processed {n}";
    PointsExpiringSoon => "{n} 积分有效期至 {time}，兑换时会先用这些积分。", "{n} points are valid until {time}; redemptions use these first.";
    PointsQueued => "等待联网提交 {n}", "Waiting for a connection {n}";
    ExpiryTitle => "积分到期", "What expires when";
    ExpiryDay => "{n} 积分有效期至 {date}", "{n} point valid until {date}|{n} points valid until {date}";
    PointsN => "{n} 积分", "{n} point|{n} points";
    AmountChip => "{v} 元 · {points} 积分", "¥{v} · {points} pts";
    CapLeftLine => "本月还可兑 {left} 元（每月上限 {cap} 元）", "This month: ¥{left} of the ¥{cap} limit left";
    CapNotEnough => "本月额度只剩 {left} 元，请选不超过它的金额，或下月 1 日起再兑换。", "Only ¥{left} of this month's limit is left; choose an amount within it, or redeem from the 1st.";
    OverCap => "超出本月额度", "over this month's limit";
    ConfirmTitle => "请确认兑换", "Confirm the redemption";
    ConfirmCost => "将使用 {n} 积分，兑换后可用 {after} 积分。", "Uses {n} points; {after} available after.";
    ConfirmFinal => "提交后不能撤销；如果兑换未成功，积分会自动退回。", "It cannot be undone once sent; if it does not go through, the points come back.";
    ConfirmGo => "确认，使用 {n} 积分", "Confirm, use {n} points";
    BackToEdit => "返回修改", "Back to edit";
    ReauthWrongPassword => "密码不正确，请重新输入你的登录密码。", "The password is wrong; enter your sign-in password again.";
    RedeemNoteQueued => "已保存，积分已为你预留。现在连不上服务器，联网后会自动提交。", "Saved, and the points are set aside. The server cannot be reached now; it is sent when you are online.";
    RedeemNoteHeld => "已提交，正在办理，办好后这里会显示结果。", "Sent and being processed; the result shows here.";
    RedeemNoteSettled => "兑换成功：{what}。", "Done: {what}.";
    RedeemNoteRefunded => "兑换未成功，{n} 积分已退回：{reason}。", "It did not go through; {n} points returned: {reason}.";
    RedeemNoteRejected => "兑换未成功，积分没有扣除：{reason}", "It did not go through; no points were taken: {reason}";
    RefundPhone => "运营商没有完成充值，请核对手机号是否正确、是否停机后再试", "the carrier did not top up; check the number is right and in service, then try again";
    RefundPower => "电力公司没有完成缴费，请核对户号后再试", "the power company did not take the payment; check the account number and try again";
    RefundCatalog => "商家没有完成发货，请稍后再试或换一件", "the merchant could not deliver; try later or choose another item";
    ChartValues => "各月明细", "Month by month";
    ChartRow => "{month}：获得 {earned}，使用 {spent}，过期 {expired}", "{month}: earned {earned}, spent {spent}, expired {expired}";
    NothingExpiring => "未来 12 个月没有积分到期。", "No points expire in the next 12 months.";
    HistoryTitle => "近 12 个月积分", "Points over 12 months";
    HistoryEarned => "获得", "Earned";
    HistorySpent => "使用", "Spent";
    HistoryExpired => "过期", "Expired";
    RedeemTitle => "积分兑换", "Redeem points";
    // the redemption's choices, for screen readers
    RedeemKindLabel => "兑换什么", "What to redeem for";
    RedeemAmountLabel => "金额", "Amount";
    KindPhone => "话费", "Phone bill";
    KindPower => "电费", "Electricity";
    KindCatalog => "实物", "Catalog";
    MobileLabel => "手机号", "Mobile number";
    AccountLabel => "电费户号（10 位）", "Power account number (10 digits)";
    AmountYuan => "{v} 元", "¥{v}";
    PricePoints => "需 {n} 积分", "Costs {n} points";
    ItemStock => "{points} 积分 · 剩 {n} 件", "{points} points · {n} left";
    PasswordAgain => "兑换超过 {n} 积分，请再次输入登录密码（需联网）。", "Over {n} points: enter your password again (needs the network).";
    RedeemButton => "兑换…", "Redeem…";
    Redeeming => "提交中…", "Sending…";
    RedemptionsTitle => "兑换记录", "Redemptions";
    NoRedemptions => "还没有兑换记录。", "No redemptions yet.";
    RStatusQueued => "已排队，等待联网提交", "Queued, waiting for the network";
    RStatusHeld => "处理中（积分已预留）", "In progress (points set aside)";
    RStatusSettled => "已完成", "Done";
    RStatusRefunded => "未成功，{n} 积分已退回：{reason}", "Did not go through; {n} points returned: {reason}";
    RStatusRejected => "未成功：{reason}", "Did not go through: {reason}";
    RefundTimeout => "服务商未及时确认", "the provider did not confirm in time";
    ChooseItem => "请选择商品", "Choose an item";
    // activities
    TabActivities => "活动", "Activities";
    AddToCalendar => "加入日历", "Add to calendar";
    CalendarSaved => "已保存到“下载”文件夹：{file}。用日历应用打开它即可添加。", "Saved to your Downloads folder as {file}. Open it with your calendar app to add it.";
    CalendarSavedHome => "已保存到主文件夹：{file}。用日历应用打开它即可添加。", "Saved to your home folder as {file}. Open it with your calendar app to add it.";
    FeedbackTitle => "活动评价", "How was it?";
    FeedbackStars => "{n} 星", "{n} star|{n} stars";
    FeedbackComment => "想说的话（选填，500 字以内）", "Anything to add (optional, up to 500 characters)";
    FeedbackSubmit => "提交评价", "Send feedback";
    FeedbackUpdate => "修改评价", "Update feedback";
    FeedbackGivenNote => "你的评价：{n} 星。{time} 前可以修改。", "You rated it {n} out of 5; you can change it until {time}.";
    FeedbackAfterEnd => "活动结束后（{time}）可以在这里评价。", "You can rate it here once it ends ({time}).";
    FeedbackPendingNote => "评价已保存，联网后自动提交。", "Saved; it is sent when you are online.";
    CharsLeft => "还可输入 {n} 字", "{n} character left|{n} characters left";
    TodayActivity => "你今天报名的活动：{time} {title}，{place}。入场时出示本页二维码。", "Booked for today: {title}, {time}, {place}. Show this code at the door.";
    SegActivities => "活动报名", "Sign-ups";
    SegGrab => "福利抢券", "Coupon grabs";
    SegScanner => "扫码签到", "Check-in";
    ActivitiesTitle => "心悦活动", "Activities";
    NoActivities => "暂时没有活动。工会发布新活动后会出现在这里。", "No activities yet. New ones appear here when the union publishes them.";
    NoMatchingActivities => "没有符合条件的活动，换个条件试试。", "No activities match; try other filters.";
    NoUpcomingActivities => "暂时没有即将开始的活动。", "Nothing coming up for now.";
    RecentlyEnded => "最近结束", "Recently ended";
    ActCatSports => "体育", "Sports";
    ActCatCulture => "文化", "Culture";
    ActCatTraining => "教培", "Training";
    ActCatFamily => "亲子", "Family";
    ActCatVolunteering => "公益", "Volunteering";
    ActCatHealth => "健康", "Health";
    ActCatOther => "其他", "Other";
    ScopeAll => "全部", "All";
    ScopeMyUnion => "本单位", "My union";
    ScopeDistrict => "全区", "District-wide";
    DateAny => "全部日期", "Any date";
    DateToday => "今天", "Today";
    DateWeek => "7 天内", "Next 7 days";
    DateMonth => "本月", "This month";
    MineUpcoming => "即将参加", "Coming up";
    MineAttended => "已参加", "Attended";
    MineMissed => "报了名未签到", "Signed up, not checked in";
    MissedHint => "未到场记为一次爽约，近期多次爽约将暂时不能报名热门活动。不能参加时，请在截止前取消报名。", "This counts as a no-show: several in a short time close popular activities to you for a while. If you cannot come, cancel before the deadline.";
    OnlyMine => "我的活动", "My activities";
    ActivityPlace => "地点：{place}", "Venue: {place}";
    ActivityTime => "{start} 至 {end}", "{start} to {end}";
    SeatsLeft => "剩余 {left} / {seats} 个名额", "{left} of {seats} places left";
    SeatsFullWaitlist => "名额已满，候补名额还剩 {n} 个", "Full; {n} waitlist place left|Full; {n} waitlist places left";
    SeatsFull => "名额已满", "Full";
    SeatsAllTaken => "名额和候补都已满", "Full, waitlist full";
    CountsAsOf => "（{time} 更新）", " (counted {time})";
    WalkIn => "无需报名，符合条件的会员直接到场签到", "No sign-up: eligible members just come and check in";
    CompanionsAllowed => "可携带家属 0–{n} 人（每人占 1 个名额）", "Up to {n} companions (each takes a place)";
    PartyTooBigWaitlist => "按最近同步的名额，不够 {n} 人同去：这样报名会排入候补。少带家属可以直接报上。", "As last synced, there are not enough places for {n} of you: this sign-up would go on the waitlist. Bring fewer companions to get a place now.";
    PartyTooBig => "按最近同步的名额，不够 {n} 人同去，候补也已满。少带家属才能报上。", "As last synced, there are not enough places for {n} of you, and the waitlist is full. Bring fewer companions to get a place.";
    SignupOpensIn => "距开始报名 {left}", "Sign-up opens in {left}";
    SignupOpensAt => "{time} 开始报名", "Sign-up opens {time}";
    SignupClosesAt => "{time} 截止报名", "Sign-up closes {time}";
    SignupButton => "报名", "Sign up";
    SignupWaitButton => "等待开始报名", "Not open yet";
    SignupWaitlistButton => "报名候补", "Join the waitlist";
    SigningUp => "正在报名…", "Signing up…";
    CompanionsLabel => "携带家属", "Companions";
    CompanionsN => "携带家属 {n} 人", "with {n} companion|with {n} companions";
    MyConfirmed => "已报名", "Signed up";
    MyAttended => "已签到参加", "Checked in";
    MyWaitlisted => "候补第 {n} 位", "Waitlist place {n}";
    MyPromoted => "已由候补转为正式报名", "Moved up from the waitlist: you have a place";
    MyCancelled => "已取消报名", "Sign-up cancelled";
    CancelSignup => "取消报名", "Cancel sign-up";
    CancelSignupConfirm => "取消后名额会让给候补的会员，不能恢复。确定取消吗？", "Your place goes to the waitlist and cannot be got back. Cancel?";
    CancelSignupYes => "确定取消", "Yes, cancel";
    CancelUntil => "{time} 前可取消", "Can be cancelled until {time}";
    ActivityNotEligible => "仅限所属工会的会员参加", "For members of its union only";
    ActivityCancelledNote => "此活动已被工会取消", "This activity was cancelled by the union";
    ActivityPopular => "热门", "Popular";
    BannedUntil => "因近期报名后多次未到场，{time} 前不能报名热门活动。", "After recent no-shows, popular activities are closed to you until {time}.";
    OpensAtNote => "{time} 开始报名，届时再来。", "Sign-up opens {time}; come back then.";
    SignupRetry => "服务器没有及时回应。请求已保存，正在用同一请求自动重试，不会重复报名。", "The server did not answer in time. Your request is saved and is being retried as the same request; you cannot be signed up twice.";
    TooEarlySignup => "还没开始报名，按钮变红后再点；现在点不会提交。", "Sign-up is not open yet: tap again when the button turns red; nothing was sent.";
    RemindersSection => "抢券提醒", "Grab reminders";
    RemindMe => "提醒我（开抢前 {n} 分钟）", "Remind me ({n} min before)";
    ReminderLead => "提前 {n} 分钟", "{n} min before";
    // the choices of how long before, for screen readers
    ReminderLeadsLabel => "提前多久提醒", "How long before to remind you";
    ReminderSet => "已设提醒：开抢前 {n} 分钟", "Reminder set: {n} min before release";
    ReminderOff => "取消提醒", "Cancel reminder";
    ReminderFired => "已提醒", "Reminded";
    ReminderMissedShort => "提醒已错过", "Reminder missed";
    ReminderKeepRunning => "提醒需要应用在后台运行：关闭窗口后它会留在托盘里。", "Reminders need the app running: closing the window keeps it in the tray.";
    NoticeMissed => "错过的提醒：「{title}」应在 {time} 提醒你（{release} 开抢），当时应用未在运行。", "Missed reminder: \"{title}\" was due {time} (release {release}), but the app was not running.";
    NoticeMoved => "「{title}」改期至 {release}，提醒已改到 {time}。", "\"{title}\" moved to {release}; the reminder is now set for {time}.";
    NoticeCancelled => "「{title}」已被工会取消，它的提醒已删除。", "\"{title}\" was cancelled by the union; its reminder was removed.";
    NoticesTitle => "提醒通知", "Reminder notices";
    Dismiss => "知道了", "Got it";
    RetryAt => "· {time} 自动重试", "· retrying at {time}";
    RetrySoon => "· 1 分钟内自动重试", "· retrying within a minute";
    RejectionsTitle => "未成功的操作", "Changes that did not go through";
    RejectionsCount => "{n} 项未成功", "{n} failed";
    RejectionsHint => "有操作未成功，点此查看原因", "Some of your changes did not go through; select to see why";
    GoWallet => "查看卡券", "Open the wallet";
    RejUseCoupon => "「{title}」没有记为已使用：{reason}", "\"{title}\" was not marked as used: {reason}";
    RejCheckIn => "{member} 在「{event}」的签到没有记录：{reason}", "The check-in of {member} at \"{event}\" was not recorded: {reason}";
    RejLanguage => "语言设置没有保存到账户：{reason}", "Your language choice was not saved to your account: {reason}";
    RejRevokeDevice => "移除设备「{name}」没有完成：{reason}", "Removing the device \"{name}\" did not go through: {reason}";
    RejRedeem => "{n} 积分的兑换未成功，积分没有扣除：{reason}", "A redemption of {n} point did not go through; no points were taken: {reason}|A redemption of {n} points did not go through; no points were taken: {reason}";
    RejFeedback => "对「{title}」的评价没有保存：{reason}", "Your feedback on \"{title}\" was not kept: {reason}";
    RejVote => "「{title}」的投票没有计入：{reason}", "Your vote on \"{title}\" was not counted: {reason}";
    RejMadeAt => "{time} 的操作", "Made {time}";
    NotifPromotedTitle => "候补成功：{title}", "You have a place: {title}";
    NotifPromotedBody => "{time}，{place}。名额已为你保留，不能参加请及时取消。", "{time}, {place}. Your place is kept; cancel in time if you cannot come.";
    NotifMovedTitle => "活动改期：{title}", "Moved: {title}";
    NotifMovedBody => "改为 {time}，{place}（原定 {was}）。", "Now {time}, {place} (was {was}).";
    NotifCancelledTitle => "活动取消：{title}", "Cancelled: {title}";
    NotifCancelledBody => "工会已取消这次活动，你的报名随之取消。", "The union has cancelled it; your sign-up goes with it.";
    ActivityMovedNote => "时间有调整，原定 {was}", "The time has changed; it was {was}";
    NotifOpensTitle => "「{title}」即将开始报名", "Sign-up for \"{title}\" opens soon";
    NotifOpensBody => "{time} 开始报名，名额有限。点击打开。", "Sign-up opens at {time}; places are limited. Click to open.";
    NotifStartsTitle => "「{title}」一小时后开始", "\"{title}\" starts in an hour";
    NotifStartsBody => "{time}，{place}。入场时出示电子护照。", "{time}, {place}. Show your passport at the door.";
    RemindOpening => "开始报名前提醒我", "Remind me before sign-up opens";
    OpeningReminderSet => "已设提醒：开始报名前会通知你", "Reminder set: you are told before sign-up opens";
    NotifTitle => "{title} 即将开抢", "{title} releases soon";
    NotifBody => "{release} 开抢，还有 {n} 分钟。点击打开。", "Releases at {release}, in {n} min. Click to open.";
    TrayOpen => "打开工会通", "Open UnionPass";
    TrayQuit => "退出", "Quit";
    TrayTooltip => "工会通：提醒在后台运行", "UnionPass: reminders running";
    Autostart => "登录电脑时自动启动（让提醒按时送达）", "Start at login (so reminders arrive on time)";
}

/// "5 分 20 秒", "2 小时 05 分", "3 天 4 小时": a time left with its units, to the second under
/// an hour (rounded up, so "0 秒" only at the end).
pub fn countdown(ms: i64, lang: Lang) -> String {
    let s = (ms.max(0) + 999) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let (msg, args): (Msg, Vec<(&str, String)>) = if d > 0 {
        (
            Msg::CountdownDays,
            vec![("d", d.to_string()), ("h", h.to_string())],
        )
    } else if h > 0 {
        (
            Msg::CountdownHours,
            vec![("h", h.to_string()), ("m", format!("{m:02}"))],
        )
    } else if m > 0 {
        (
            Msg::CountdownMinutes,
            vec![("m", m.to_string()), ("s", format!("{sec:02}"))],
        )
    } else {
        (Msg::CountdownSeconds, vec![("s", sec.to_string())])
    };
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fill(msg.text(lang), &args)
}

/// A wait the server asked for, as a sentence says it: seconds under a minute, else whole minutes
/// rounded up ("2 秒", "1 minute", "15 minutes").
pub fn wait_text(seconds: u64, lang: Lang) -> String {
    let (msg, n) = if seconds < 60 {
        (Msg::Seconds, seconds.max(1))
    } else {
        (Msg::Minutes, seconds.div_ceil(60))
    };
    fill(msg.text(lang), &[("n", &n.to_string())])
}

/// What changes wait to be uploaded, by kind, in the order given: "签到 2 条、用券 1 次",
/// "2 check-ins, 1 coupon use".
pub fn pending_what(kinds: &[crate::view::PendingKind], lang: Lang) -> String {
    let parts: Vec<String> = kinds
        .iter()
        .map(|k| {
            use crate::api::kind;
            let msg = match k.kind.as_str() {
                kind::CHECK_IN => Msg::PendingCheckIns,
                kind::USE_COUPON => Msg::PendingCouponUses,
                kind::REDEEM => Msg::PendingRedemptions,
                kind::FEEDBACK => Msg::PendingFeedback,
                kind::VOTE => Msg::PendingVotes,
                kind::SET_LANGUAGE => Msg::PendingLanguage,
                kind::REVOKE_DEVICE => Msg::PendingDeviceRemovals,
                _ => Msg::PendingOther,
            };
            fill(msg.text(lang), &[("n", &k.n.to_string())])
        })
        .collect();
    parts.join(match lang {
        Lang::ZhCn => "、",
        Lang::En => ", ",
    })
}

/// "今天 17:00", "明天 09:30", "昨天 14:00", "周四 12-03 09:00" or "Thu 3 Dec 09:00" (the rest of
/// the coming week: its weekday, which members plan by, and its date), or "2026-12-09 09:30": an
/// instant by its day relative to `now`, in `zone`.
pub fn day_time(
    t: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    zone: crate::time::Zone,
    lang: Lang,
) -> String {
    let day = |x: chrono::DateTime<chrono::Utc>| x.with_timezone(&zone.offset()).date_naive();
    let clock = crate::time::format_clock(t, zone);
    match (day(t) - day(now)).num_days() {
        0 => fill(Msg::DayToday.text(lang), &[("time", &clock)]),
        1 => fill(Msg::DayTomorrow.text(lang), &[("time", &clock)]),
        -1 => fill(Msg::DayYesterday.text(lang), &[("time", &clock)]),
        2..=6 => {
            use chrono::Datelike;
            const WEEKDAYS: [Msg; 7] = [
                Msg::WeekdayMon,
                Msg::WeekdayTue,
                Msg::WeekdayWed,
                Msg::WeekdayThu,
                Msg::WeekdayFri,
                Msg::WeekdaySat,
                Msg::WeekdaySun,
            ];
            let weekday = WEEKDAYS[day(t).weekday().num_days_from_monday() as usize];
            // the weekday kept on one line with its date; in English the month by its name
            // ("12-09" reads as 12 September to many)
            let date = match lang {
                Lang::ZhCn => day(t).format("%m-%d").to_string(),
                Lang::En => day(t).format("%-d\u{a0}%b").to_string(),
            };
            format!("{}\u{a0}{date} {clock}", weekday.text(lang))
        }
        _ => crate::time::format_minute(t, zone),
    }
}

/// When something happened or will happen, for a log or a stamp: the clock alone on the day of
/// `now` ("14:05"), otherwise as [`day_time`] says it ("昨天 17:00", "明天 09:30", the date).
/// A log that mixes today's rows with yesterday's says which is which without repeating today.
pub fn moment(
    t: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    zone: crate::time::Zone,
    lang: Lang,
) -> String {
    if crate::time::format_date(t, zone) == crate::time::format_date(now, zone) {
        crate::time::format_clock(t, zone)
    } else {
        day_time(t, now, zone, lang)
    }
}

/// [`moment`] inside a sentence: today's clock takes its preposition in English ("Already
/// checked in at 11:03"); another day reads as its day already does ("yesterday 17:00").
pub fn moment_in_sentence(
    t: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    zone: crate::time::Zone,
    lang: Lang,
) -> String {
    let said = moment(t, now, zone, lang);
    if crate::time::format_date(t, zone) == crate::time::format_date(now, zone) {
        fill(Msg::AtClock.text(lang), &[("time", &said)])
    } else {
        said
    }
}

/// A month under a chart's bar, from its "2026-12": "12月", "Dec" (a bare "12" read as a
/// quantity). Anything else is shown as it came.
pub fn month_short(month: &str, lang: Lang) -> String {
    use chrono::Datelike;
    match chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d") {
        Ok(day) => match lang {
            Lang::ZhCn => format!("{}月", day.month()),
            Lang::En => day.format("%b").to_string(),
        },
        Err(_) => month.to_string(),
    }
}

/// A line that begins with a filled-in value, its first letter made a capital: "today 10:14 to
/// 12:44" heads a line as "Today 10:14 to 12:44". Chinese, digits and capitals are left as they
/// are.
pub fn line_start(text: String) -> String {
    match text.chars().next() {
        Some(first) if first.is_lowercase() => {
            first.to_uppercase().chain(text.chars().skip(1)).collect()
        }
        _ => text,
    }
}

/// Replace each `{name}` in `text` with its value. A text with plural forms (`one|other`, in
/// English) is first cut to the form `{n}` needs: the first for 1, the second otherwise.
pub fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let text = match text.split_once('|') {
        Some((one, other)) => {
            let n = args
                .iter()
                .find(|(k, _)| *k == "n")
                .map(|(_, v)| v.replace(',', ""));
            if n.as_deref() == Some("1") {
                one
            } else {
                other
            }
        }
        None => text,
    };
    // one pass over the text: a value is copied as it is, so a `{name}` inside a member's own
    // words (a title, a comment) is never filled in its turn
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            args.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Short parts of one line joined with " · ", each kept whole: a narrow screen may break the line
/// only between parts. Inside a part, spaces are no-break spaces; Chinese, which breaks between
/// any two characters, needs the line's `word-break: keep-all` too.
pub fn whole_parts<S: AsRef<str>>(parts: &[S]) -> String {
    parts
        .iter()
        .map(|p| p.as_ref().replace(' ', "\u{a0}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `text` cut into runs, each `(is_date, run)`: a date as the app writes one (`2027-01-05`,
/// `12-05`), with the time that follows it (`2027-01-05 16:05`), is a run of its own, for a
/// screen to keep on one line (a narrow one would break it after a hyphen otherwise). A word of
/// letters, digits and hyphens is a date only as a whole: `M10001-12-05`, `010-1234-5678` and
/// `1-5` are not. The runs put together are `text`.
pub fn date_runs(text: &str) -> Vec<(bool, &str)> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    let digits = |from: usize, n: usize| {
        b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
    };
    let mut runs = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if !word(b[i]) {
            i += 1;
            continue;
        }
        // the whole word, then whether it is `YYYY-MM-DD` or `MM-DD`
        let mut end = i;
        while end < b.len() && word(b[end]) {
            end += 1;
        }
        let date = match end - i {
            10 => {
                digits(i, 4)
                    && b[i + 4] == b'-'
                    && digits(i + 5, 2)
                    && b[i + 7] == b'-'
                    && digits(i + 8, 2)
            }
            5 => digits(i, 2) && b[i + 2] == b'-' && digits(i + 3, 2),
            _ => false,
        };
        if !date {
            i = end;
            continue;
        }
        // its time, `HH:MM`, as a word of its own
        if b.get(end) == Some(&b' ')
            && digits(end + 1, 2)
            && b.get(end + 3) == Some(&b':')
            && digits(end + 4, 2)
            && b.get(end + 6).is_none_or(|&c| !word(c) && c != b':')
        {
            end += 6;
        }
        if start < i {
            runs.push((false, &text[start..i]));
        }
        runs.push((true, &text[i..end]));
        (start, i) = (end, end);
    }
    if start < b.len() {
        runs.push((false, &text[start..]));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_month_is_named_as_a_month() {
        assert_eq!(month_short("2026-12", Lang::ZhCn), "12月");
        assert_eq!(month_short("2027-01", Lang::ZhCn), "1月");
        assert_eq!(month_short("2027-01", Lang::En), "Jan");
        assert_eq!(month_short("2026-09", Lang::En), "Sep");
        for odd in ["2026-13", "2026-00", "december", ""] {
            assert_eq!(month_short(odd, Lang::En), odd);
        }
    }

    #[test]
    fn waiting_changes_are_named_by_kind_in_order() {
        use crate::view::PendingKind;
        let k = |kind: &str, n| PendingKind {
            kind: kind.into(),
            n,
        };
        let kinds = [k("use_coupon", 1), k("check_in", 2), k("set_language", 1)];
        assert_eq!(
            pending_what(&kinds, Lang::ZhCn),
            "用券 1 次、签到 2 条、语言设置"
        );
        assert_eq!(
            pending_what(&kinds, Lang::En),
            "1 coupon use, 2 check-ins, the language choice"
        );
        // every kind a device sends has its own words, in both languages, none another's
        for lang in [Lang::ZhCn, Lang::En] {
            let words: std::collections::HashSet<String> = crate::api::MutationOp::KINDS
                .iter()
                .map(|kind| pending_what(&[k(kind, 3)], lang))
                .collect();
            assert_eq!(
                words.len(),
                crate::api::MutationOp::KINDS.len(),
                "{words:?}"
            );
            assert!(
                !words.contains(&pending_what(&[k("from_a_newer_app", 3)], lang)),
                "{words:?}"
            );
        }
        assert_eq!(
            pending_what(&[k("from_a_newer_app", 3)], Lang::ZhCn),
            "其他更改 3 项"
        );
        assert_eq!(pending_what(&[], Lang::En), "");
    }

    #[test]
    fn dates_and_their_times_are_runs_of_their_own() {
        assert_eq!(
            date_runs("有效期至 2027-01-05 · 还剩 3 天"),
            vec![
                (false, "有效期至 "),
                (true, "2027-01-05"),
                (false, " · 还剩 3 天")
            ]
        );
        assert_eq!(
            date_runs("2026-12-05 16:05 起可用，12-31 截止"),
            vec![
                (true, "2026-12-05 16:05"),
                (false, " 起可用，"),
                (true, "12-31"),
                (false, " 截止")
            ]
        );
        // not dates: a lone number, a minus, codes with letters (before or after), a trailing
        // hyphen, a range, a phone number
        for text in [
            "面值 30 元",
            "-5 分",
            "M10001-2",
            "A12-3",
            "M10001-2-3",
            "A2027-01-05",
            "12-31x",
            "第 3- 名",
            "1-5 人",
            "010-1234-5678",
            "",
            "1",
            "-",
        ] {
            let runs = date_runs(text);
            assert!(runs.iter().all(|(date, _)| !date), "{text}: {runs:?}");
            assert_eq!(runs.iter().map(|r| r.1).collect::<String>(), text);
        }
        // cut short at the end of the text: the date alone
        assert_eq!(
            date_runs("至 2027-01-05 12"),
            vec![(false, "至 "), (true, "2027-01-05"), (false, " 12")]
        );
        assert_eq!(date_runs("12-05 1"), vec![(true, "12-05"), (false, " 1")]);
        // a time only when whole; a date glued to a Chinese word; a time at the very end
        let text = "截至 2027-01-05 12:3 和至2027-01-06，12-07 08:30:15 或 2027-01-08 09:45";
        let runs = date_runs(text);
        assert_eq!(runs.iter().map(|r| r.1).collect::<String>(), text);
        assert_eq!(
            runs.iter().filter(|r| r.0).map(|r| r.1).collect::<Vec<_>>(),
            ["2027-01-05", "2027-01-06", "12-07", "2027-01-08 09:45"]
        );
    }

    fn placeholders(s: &str) -> Vec<String> {
        let mut v: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn every_message_has_both_languages_with_the_same_placeholders() {
        for m in Msg::ALL {
            let zh = m.text(Lang::ZhCn);
            let en = m.text(Lang::En);
            assert!(!zh.trim().is_empty() && !en.trim().is_empty(), "{m:?}");
            assert_ne!(zh, en, "{m:?} is not translated");
            assert_eq!(placeholders(zh), placeholders(en), "{m:?}");
        }
    }

    #[test]
    fn countdowns_say_their_units() {
        let ms = |d: i64, h: i64, m: i64, s: i64| ((d * 24 + h) * 60 + m) * 60_000 + s * 1000;
        assert_eq!(countdown(ms(0, 0, 5, 20), Lang::ZhCn), "5 分 20 秒");
        assert_eq!(countdown(ms(0, 0, 5, 20), Lang::En), "5 min 20 s");
        assert_eq!(countdown(ms(0, 2, 5, 59), Lang::ZhCn), "2 小时 05 分");
        assert_eq!(countdown(ms(3, 4, 0, 0), Lang::En), "3 d 4 h");
        assert_eq!(
            countdown(ms(0, 0, 0, 9) - 500, Lang::ZhCn),
            "9 秒",
            "rounded up"
        );
        assert_eq!(countdown(-5, Lang::En), "0 s");
    }

    #[test]
    fn times_say_today_and_tomorrow_in_the_zone() {
        use crate::time::Zone;
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // 23:30 in Shanghai on 1 December
        let now = at("2026-12-01T15:30:00Z");
        assert_eq!(
            day_time(
                at("2026-12-01T15:50:00Z"),
                now,
                Zone::AsiaShanghai,
                Lang::ZhCn
            ),
            "今天 23:50"
        );
        // 00:10 on 2 December in Shanghai is tomorrow there, though still 1 December in UTC
        assert_eq!(
            day_time(
                at("2026-12-01T16:10:00Z"),
                now,
                Zone::AsiaShanghai,
                Lang::En
            ),
            "tomorrow 00:10"
        );
        assert_eq!(
            day_time(
                at("2026-12-03T01:00:00Z"),
                now,
                Zone::AsiaShanghai,
                Lang::ZhCn
            ),
            "周四\u{a0}12-03 09:00"
        );
        // the coming week by weekday, up to six days ahead; a week ahead, and further back than
        // yesterday, by the whole date
        let days = |d: i64, lang| {
            day_time(
                at("2026-12-01T01:00:00Z") + chrono::Duration::days(d),
                now,
                Zone::AsiaShanghai,
                lang,
            )
        };
        assert_eq!(days(6, Lang::En), "Mon\u{a0}7\u{a0}Dec 09:00");
        assert_eq!(days(6, Lang::ZhCn), "周一\u{a0}12-07 09:00");
        assert_eq!(days(7, Lang::ZhCn), "2026-12-08 09:00");
        assert_eq!(days(-1, Lang::ZhCn), "昨天 09:00");
        assert_eq!(line_start(days(-1, Lang::En)), "Yesterday 09:00");
        assert_eq!(days(-2, Lang::En), "2026-11-29 09:00");
    }

    #[test]
    fn a_moment_is_its_clock_today_and_its_day_otherwise() {
        use crate::time::Zone;
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // 00:30 on 2 December in Shanghai (still 1 December in UTC)
        let now = at("2026-12-01T16:30:00Z");
        let m = |s: &str, lang| moment(at(s), now, Zone::AsiaShanghai, lang);
        // 00:05 today in Shanghai
        assert_eq!(m("2026-12-01T16:05:00Z", Lang::ZhCn), "00:05");
        // 23:50 on 1 December in Shanghai: yesterday there, though the same UTC day
        assert_eq!(m("2026-12-01T15:50:00Z", Lang::ZhCn), "昨天 23:50");
        assert_eq!(m("2026-12-01T15:50:00Z", Lang::En), "yesterday 23:50");
        assert_eq!(m("2026-11-30T15:50:00Z", Lang::En), "2026-11-30 23:50");
        assert_eq!(m("2026-12-02T17:00:00Z", Lang::ZhCn), "明天 01:00");
        // inside a sentence, today's clock takes "at" in English only
        let s = |t: &str, lang| moment_in_sentence(at(t), now, Zone::AsiaShanghai, lang);
        assert_eq!(s("2026-12-01T16:05:00Z", Lang::En), "at 00:05");
        assert_eq!(s("2026-12-01T16:05:00Z", Lang::ZhCn), "00:05");
        assert_eq!(s("2026-12-01T15:50:00Z", Lang::En), "yesterday 23:50");
        assert_eq!(
            fill(
                Msg::ScanAlreadyCheckedIn.text(Lang::En),
                &[
                    ("time", &s("2026-12-01T16:05:00Z", Lang::En)),
                    ("device", "Li Wei")
                ]
            ),
            "Already checked in at 00:05 by Li Wei; let them in, no need to scan again."
        );
    }

    #[test]
    fn a_line_begins_with_a_capital_in_english_only() {
        let line = |lang| {
            let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T02:00:00Z")
                .unwrap()
                .to_utc();
            let start = day_time(now, now, crate::time::Zone::AsiaShanghai, lang);
            line_start(fill(
                Msg::ActivityTime.text(lang),
                &[("start", &start), ("end", "12:44")],
            ))
        };
        assert_eq!(line(Lang::En), "Today 10:00 to 12:44");
        assert_eq!(line(Lang::ZhCn), "今天 10:00 至 12:44");
        assert_eq!(line_start("2026-12-03 09:00".into()), "2026-12-03 09:00");
        assert_eq!(line_start(String::new()), "");
    }

    #[test]
    fn plural_forms_follow_n() {
        for m in Msg::ALL {
            let en = m.text(Lang::En);
            if en.contains('|') {
                assert!(en.contains("{n}"), "{m:?} has plural forms but no {{n}}");
                assert!(!m.text(Lang::ZhCn).contains('|'), "{m:?}");
            }
        }
        let waiting = Msg::ChangesWaiting.text(Lang::En);
        assert_eq!(fill(waiting, &[("n", "1")]), "1 change waiting");
        assert_eq!(fill(waiting, &[("n", "2")]), "2 changes waiting");
        assert_eq!(fill(waiting, &[("n", "0")]), "0 changes waiting");
        assert_eq!(
            fill(Msg::PointsN.text(Lang::En), &[("n", "1,000")]),
            "1,000 points"
        );
        assert_eq!(fill(Msg::PointsN.text(Lang::ZhCn), &[("n", "1")]), "1 积分");
    }

    #[test]
    fn fill_replaces_named_placeholders() {
        assert_eq!(
            fill(Msg::ChangesWaiting.text(Lang::En), &[("n", "3")]),
            "3 changes waiting"
        );
        assert_eq!(
            fill(Msg::SyncedAt.text(Lang::ZhCn), &[("time", "08:05")]),
            "已同步 08:05"
        );
    }

    #[test]
    fn a_filled_value_is_never_filled_again() {
        let text = "{title} starts at {time}";
        assert_eq!(
            fill(text, &[("title", "Talk {time}"), ("time", "09:00")]),
            "Talk {time} starts at 09:00"
        );
        assert_eq!(
            fill(text, &[("time", "{title}"), ("title", "A")]),
            "A starts at {title}"
        );
        // unknown and unclosed braces stay as they are
        assert_eq!(fill("{x} {n} {", &[("n", "2")]), "{x} 2 {");
        assert_eq!(fill("费用 {n} 元", &[("n", "5")]), "费用 5 元");
    }

    #[test]
    fn whole_parts_break_only_between_parts() {
        let line = whole_parts(&["超出名额 1 人", "手动放行待核对 1 人"]);
        assert_eq!(
            line,
            "超出名额\u{a0}1\u{a0}人 · 手动放行待核对\u{a0}1\u{a0}人"
        );
        // the only ordinary spaces are the separators'
        assert_eq!(line.matches(' ').count(), 2);
        assert_eq!(
            whole_parts(&["1 over capacity"]),
            "1\u{a0}over\u{a0}capacity"
        );
        assert_eq!(whole_parts::<&str>(&[]), "");
    }

    #[test]
    fn lang_tags_round_trip() {
        for l in Lang::ALL {
            assert_eq!(Lang::from_tag(l.tag()), Some(l));
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                format!("\"{}\"", l.tag())
            );
        }
        assert_eq!(Lang::default(), Lang::ZhCn);
    }
}
