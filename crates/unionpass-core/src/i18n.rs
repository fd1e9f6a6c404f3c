//! Every user-facing string, in zh-CN (first) and English.
//!
//! The UI and the shell look words up by [`Msg`]; placeholders are written `{name}` and filled with
//! [`fill`]. A test checks that every message has both languages and the same placeholders.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    WorkplaceUnion => "所属工会", "Workplace union";
    ValidUntil => "有效期至", "Valid until";
    RoleMember => "会员", "Member";
    RoleStaff => "工作人员", "Staff";
    PassportExpired => "护照已过期，请联网同步以更新。", "This passport has expired. Connect and sync to renew it.";
    PassportMissing => "还没有护照数据，请联网同步。", "No passport yet. Connect to the internet and sync.";
    Loading => "正在加载…", "Loading…";
    // sync status
    SyncedAt => "已同步 {time}", "Synced at {time}";
    Syncing => "正在同步…", "Syncing…";
    Offline => "离线", "Offline";
    ChangesWaiting => "{n} 项更改待同步", "{n} changes waiting";
    NeverSynced => "尚未同步", "Not synced yet";
    SyncNow => "立即同步", "Sync now";
    OfflineHint => "当前无法连接服务器，显示的是本机保存的数据。", "The server cannot be reached; you are seeing the data saved on this device.";
    // me
    Account => "账户", "Account";
    Language => "语言", "Language";
    SyncSection => "同步", "Sync";
    ServerSection => "服务器", "Server";
    Logout => "退出登录", "Sign out";
    LogoutConfirm => "退出后，本机保存的会员数据将被清除。确定退出吗？", "Signing out removes your member data from this device. Sign out?";
    Cancel => "取消", "Cancel";
    // errors: what happened, and what to do next
    ErrInvalidCredentials => "会员号或密码不正确，请重新输入。", "The member number or password is wrong. Please try again.";
    ErrSessionExpired => "登录已失效，请重新登录。", "Your session has ended. Please sign in again.";
    ErrForbidden => "无权访问该内容。", "You do not have access to this.";
    ErrRateLimited => "尝试次数过多，请稍后再试。", "Too many attempts. Please wait a moment and try again.";
    ErrServer => "服务器暂时出现问题，请稍后再试。", "The server has a problem right now. Please try again later.";
    ErrOffline => "无法连接服务器，请检查网络后重试。", "Cannot reach the server. Check your connection and try again.";
    ErrUpdateApp => "服务器的回复无法识别，请将应用更新到最新版本。", "The server's answer was not understood. Please update the app.";
    ErrServerUrl => "服务器地址格式不正确，应以 http:// 或 https:// 开头。", "The server address is not valid; it must start with http:// or https://.";
    ErrNotLoggedIn => "请先登录。", "Please sign in first.";
    ErrKeyring => "系统安全存储（钥匙串）不可用，请解锁后重试。", "The system's secure store (keyring) is unavailable. Unlock it and try again.";
    ErrStorage => "本机数据读写失败，请重启应用；若仍失败，请退出登录后重新登录。", "Local data could not be read or written. Restart the app; if it persists, sign out and in again.";
    ErrStorageFull => "存储空间已满，请清理空间后重试，已保存的数据不会丢失。", "The disk is full. Free some space and try again; nothing saved is lost.";
    ErrDatabaseTooNew => "本机数据来自更新版本的应用，请将应用更新到最新版本。", "The data on this device was written by a newer version of the app. Please update the app.";
    ErrInvalidInput => "请检查填写的内容。", "Please check what you entered.";
    ErrFieldRequired => "请填写{field}。", "Please enter your {field}.";
}

/// Replace each `{name}` in `text` with its value.
pub fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<String> {
        let mut v: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
            .collect();
        v.sort();
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
