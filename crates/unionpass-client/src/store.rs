//! The local SQLite store. One file per signed-in device; everything the UI shows is read here.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use unionpass_core::api::{
    kind, Change, ChangeKind, DeviceInfo, Mutation, MutationOp, PassportInfo, Profile, Role,
    SyncResponse, Union,
};
use unionpass_core::view::{RejectedChange, RejectionView};
use unionpass_core::{ErrorCode, Lang};
use unionpass_sqlite::{migrate_with, Migration};
use uuid::Uuid;

use crate::error::Result;

/// The store's schema, `schema/NNNN_name.sql`. Append only.
pub const MIGRATIONS: &[Migration] = unionpass_sqlite::schema!(
    "src/schema";
    "0001_foundation",
    "0002_passport_v2_scanner",
    "0003_wallet",
    "0004_grabs",
    "0005_stock_left",
    "0006_reminders",
    "0007_points",
    "0008_event_points",
    "0009_checkin_refusals",
    "0010_coupons_by_campaign",
    "0011_scanner_names",
    "0012_activities",
    "0013_signup_keys",
    "0014_scanner_signups",
    "0015_feedback",
    "0016_polls",
    "0017_activity_reminders",
    "0018_rejections_and_voids",
    "0019_door_companions",
    "0020_event_title_en",
    "0021_event_place_en",
    "0022_activity_notices",
    "0023_checkin_by_hand",
    "0024_checkin_staff",
    "0025_checkins_made_here",
    "0026_outbox_kind",
);

const K_DEVICE_ID: &str = "device_id";
const K_SERVER_URL: &str = "server_url";
const K_MEMBER_ID: &str = "member_id";
const K_CURSOR: &str = "cursor";
/// Stores below this schema version were kept by an app that skipped kinds of change this one
/// stores (points, activities, feedback, polls, withdrawn coupons, ...): after upgrading they
/// fetch the whole change log again. Raise it with each migration that stores a new kind of
/// synced change, and give the upgrade test (`tests/it/upgrade.rs`) a change of that kind: it
/// then fails while this is too low (as it does for the withdrawn coupon of version 18).
pub const REFETCH_BELOW: u32 = 18;
const K_LAST_SYNC_OK: &str = "last_sync_ok_at";
/// Set while a sync from the log's start has more pages to come (see `apply_sync`).
const K_CATCHING_UP: &str = "catching_up";
/// Set while a store fetches the log again after an upgrade: the cursor it had reached, up to
/// which the changes it fetches are history (see `apply_sync`).
const K_HISTORY_UNTIL: &str = "history_until";
const K_LAST_SYNC_ERR: &str = "last_sync_error";
const K_LANGUAGE: &str = "language";
/// Why the member was signed out without asking (a stable code), shown at the next sign-in.
const K_SIGNED_OUT: &str = "signed_out_reason";
/// The member whose changes were still waiting when the server ended their session: they stay
/// in the outbox for that member's next sign-in here (see [`Store::wipe_member_data`]).
const K_HELD_FOR: &str = "held_for_member";
/// That member's number, so the sign-in screen can name the account and fill it in.
const K_HELD_NO: &str = "held_for_member_no";
/// The server's last `GET /v1/version` answer, and when it came.
const K_VERSIONS: &str = "server_versions";
const K_VERSIONS_AT: &str = "server_versions_at";

/// A mutation waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub mutation: Mutation,
    pub attempts: i64,
}

/// What [`Store::held`] counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub coupons: i64,
    pub points_entries: i64,
    pub outbox: i64,
}

/// The outcome of the last sync attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncLogEntry {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub code: Option<ErrorCode>,
    pub pushed: i64,
    pub pulled: i64,
}

pub struct Store {
    pub(crate) conn: Connection,
}

pub(crate) use unionpass_sqlite::ts;

pub(crate) fn parse_ts(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

impl Store {
    /// Open (creating if needed) the store at `path` and bring its schema up to date. A store
    /// written by a newer app is refused with [`ErrorCode::DatabaseTooNew`] and left untouched.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // a store from a newer app is refused before anything is written to it or beside it
        let mut conn = unionpass_sqlite::open(path, MIGRATIONS)?;
        // WAL for readers during writes; FULL so that an acknowledged outbox write survives power
        // loss; secure_delete so that logout overwrites what it removes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // a store kept by an app that skipped some kinds of change fetches the log again: its
        // cursor is past changes it could not store then
        migrate_with(&mut conn, MIGRATIONS, |tx, found| {
            if found > 0 && found < REFETCH_BELOW {
                // what the store had synced is known to the member; what the fetch brings after
                // it is news (see `apply_sync`). A store that never finished a sync was cut off
                // in its first one, catching up: all it fetches is history, as on a new phone
                tx.execute(
                    "INSERT OR REPLACE INTO meta(key, value)
                     SELECT ?2, value FROM meta WHERE key = ?1 AND value <> '0'
                       AND EXISTS (SELECT 1 FROM meta WHERE key = ?3)",
                    [K_CURSOR, K_HISTORY_UNTIL, K_LAST_SYNC_OK],
                )?;
                tx.execute("DELETE FROM meta WHERE key = ?1", [K_CURSOR])?;
            }
            Ok(())
        })?;
        let store = Store { conn };
        store.device_id()?; // created on first open
        Ok(store)
    }

    /// Open the store at `path` to read only, whatever its schema, writing nothing to it or
    /// beside it ([`unionpass_sqlite::open_read_only`]). For a store a newer app wrote
    /// ([`crate::kept::KeptPassport`]): what this version can still read from it is read as it
    /// is, and a table it changed is an error, never a guess.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        Ok(Store {
            conn: unionpass_sqlite::open_read_only(path)?,
        })
    }

    /// This installation's id as stored, without making one (a read-only store cannot).
    pub fn stored_device_id(&self) -> Result<Option<Uuid>> {
        Ok(self.get(K_DEVICE_ID)?.and_then(|v| v.parse().ok()))
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, key)
    }

    pub(crate) fn set(&self, key: &str, value: &str) -> Result<()> {
        meta_set(&self.conn, key, value)
    }

    /// This installation's random id; names the keyring entry. Not a secret.
    pub fn device_id(&self) -> Result<Uuid> {
        if let Some(id) = self.stored_device_id()? {
            return Ok(id);
        }
        let id = Uuid::new_v4();
        self.set(K_DEVICE_ID, &id.to_string())?;
        Ok(id)
    }

    pub fn server_url(&self) -> Result<Option<String>> {
        self.get(K_SERVER_URL)
    }

    pub fn member_id(&self) -> Result<Option<i64>> {
        Ok(self.get(K_MEMBER_ID)?.and_then(|v| v.parse().ok()))
    }

    /// Record who signed in where (the token goes to the keyring, never here). Changes held
    /// from a session the server ended go up with the first sync when they are this member's,
    /// and are dropped unsent when they are another member's: the server would credit the new
    /// member with them (a check-in to the wrong staff member, a coupon used from the wrong
    /// wallet).
    pub fn set_account(&mut self, server_url: &str, member_id: i64) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held_for = meta_get(&tx, K_HELD_FOR)?.and_then(|v| v.parse::<i64>().ok());
        if held_for != Some(member_id) {
            // nothing may wait here for anyone but the member signed in
            tx.execute("DELETE FROM outbox", [])?;
        }
        let kept: i64 = tx.query_row(
            "SELECT count(*) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM meta WHERE key IN (?1, ?2, ?3)",
            params![K_SIGNED_OUT, K_HELD_FOR, K_HELD_NO],
        )?;
        meta_set(&tx, K_SERVER_URL, server_url)?;
        meta_set(&tx, K_MEMBER_ID, &member_id.to_string())?;
        tx.commit()?;
        if kept > 0 {
            tracing::info!(
                kept,
                "changes held from the ended session go up with this sync"
            );
        }
        Ok(())
    }

    /// Whether the outbox is held for a member whose session the server ended, and that
    /// member's number (the sign-in screen names the account and fills it in).
    pub fn held_for_sign_in(&self) -> Result<(bool, Option<String>)> {
        if self.get(K_HELD_FOR)?.is_none() {
            return Ok((false, None));
        }
        Ok((true, self.get(K_HELD_NO)?))
    }

    /// Why the member was signed out without asking, until they sign in again.
    pub fn signed_out_reason(&self) -> Result<Option<ErrorCode>> {
        Ok(self
            .get(K_SIGNED_OUT)?
            .and_then(|c| serde_json::from_value(serde_json::Value::String(c)).ok()))
    }

    pub fn set_signed_out_reason(&self, code: ErrorCode) -> Result<()> {
        self.set(K_SIGNED_OUT, code.as_str())
    }

    /// The UI language chosen on this device, if any.
    pub fn language(&self) -> Result<Option<Lang>> {
        Ok(self.get(K_LANGUAGE)?.and_then(|v| Lang::from_tag(&v)))
    }

    pub fn set_language(&self, lang: Lang) -> Result<()> {
        self.set(K_LANGUAGE, lang.tag())
    }

    /// SQLite's own check of the file (`PRAGMA integrity_check`): "ok", or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(lines.join("; "))
    }

    /// How many coupons, points entries and queued changes the store holds (diagnostics; the
    /// crash tests compare them with the server's log up to the cursor).
    pub fn held(&self) -> Result<Held> {
        let count = |sql: &str| -> Result<i64> { Ok(self.conn.query_row(sql, [], |r| r.get(0))?) };
        Ok(Held {
            coupons: count("SELECT count(*) FROM coupons")?,
            points_entries: count("SELECT count(*) FROM points_entries")?,
            outbox: count("SELECT count(*) FROM outbox")?,
        })
    }

    pub fn cursor(&self) -> Result<i64> {
        Ok(self
            .get(K_CURSOR)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    pub fn profile(&self) -> Result<Option<Profile>> {
        Ok(self
            .conn
            .query_row(
                "SELECT member_id, member_no, name, role, union_id, union_name, language FROM profile",
                [],
                |r| {
                    Ok(Profile {
                        member_id: r.get(0)?,
                        member_no: r.get(1)?,
                        name: r.get(2)?,
                        role: Role::parse(&r.get::<_, String>(3)?).unwrap_or(Role::Member),
                        union: Union { id: r.get(4)?, name: r.get(5)? },
                        language: r.get::<_, Option<String>>(6)?.and_then(|l| Lang::from_tag(&l)),
                    })
                },
            )
            .optional()?)
    }

    pub fn passport(&self) -> Result<Option<PassportInfo>> {
        Ok(self
            .conn
            .query_row(
                "SELECT credential, kid, valid_from, valid_until FROM passport",
                [],
                |r| {
                    Ok(PassportInfo {
                        credential: r.get(0)?,
                        kid: r.get(1)?,
                        valid_from: parse_ts(r.get(2)?)?,
                        valid_until: parse_ts(r.get(3)?)?,
                    })
                },
            )
            .optional()?)
    }

    /// Store one page of a sync answer in a single transaction: profile, passport, changes and
    /// the new cursor land together or not at all. Returns how many changes were applied.
    pub fn apply_sync(&mut self, resp: &SyncResponse, now: DateTime<Utc>) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let p = &resp.profile;
        tx.execute(
            "INSERT INTO profile(id, member_id, member_no, name, role, union_id, union_name, language)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET member_id = excluded.member_id, member_no = excluded.member_no,
               name = excluded.name, role = excluded.role, union_id = excluded.union_id,
               union_name = excluded.union_name, language = excluded.language",
            params![
                p.member_id,
                p.member_no,
                p.name,
                p.role.as_str(),
                p.union.id,
                p.union.name,
                p.language.map(Lang::tag)
            ],
        )?;
        match &resp.passport {
            Some(pp) => {
                tx.execute(
                    "INSERT INTO passport(id, credential, kid, valid_from, valid_until, received_at)
                     VALUES (1, ?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET credential = excluded.credential, kid = excluded.kid,
                       valid_from = excluded.valid_from, valid_until = excluded.valid_until,
                       received_at = excluded.received_at",
                    params![
                        pp.credential,
                        pp.kid,
                        ts(pp.valid_from),
                        ts(pp.valid_until),
                        ts(now)
                    ],
                )?;
            }
            None => {
                tx.execute("DELETE FROM passport", [])?;
            }
        }
        tx.execute("DELETE FROM devices", [])?;
        for d in &resp.devices {
            tx.execute(
                "INSERT INTO devices(id, name, device_kid, created_at, current) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.id, d.name, d.device_kid, ts(d.created_at), d.current],
            )?;
        }
        let language_pending: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM outbox WHERE state = 'pending' AND kind = ?1)",
            [kind::SET_LANGUAGE],
            |r| r.get(0),
        )?;
        // history is not news (no notice, no announced promotion): a new device's first sync
        // replays the whole log, page by page, until the last page; a store fetching the log
        // again after an upgrade replays it up to the cursor it had reached, and what comes
        // after that happened since the member's last sync
        let history_until: Option<i64> =
            meta_get(&tx, K_HISTORY_UNTIL)?.and_then(|v| v.parse().ok());
        let catching_up = (history_until.is_none()
            && meta_get(&tx, K_CURSOR)?.is_none_or(|c| c == "0"))
            || meta_get(&tx, K_CATCHING_UP)?.is_some();
        for change in &resp.changes {
            let history = catching_up || history_until.is_some_and(|h| change.seq <= h);
            apply_change(&tx, change, language_pending, history)?;
        }
        if resp.more && catching_up {
            meta_set(&tx, K_CATCHING_UP, "1")?;
        } else {
            tx.execute("DELETE FROM meta WHERE key = ?1", [K_CATCHING_UP])?;
        }
        if history_until.is_some_and(|h| !resp.more || resp.cursor >= h) {
            tx.execute("DELETE FROM meta WHERE key = ?1", [K_HISTORY_UNTIL])?;
        }
        if let Some(offer) = &resp.points_offer {
            crate::points::set_offer(&tx, offer)?;
        }
        for s in &resp.stock_left {
            tx.execute(
                "UPDATE campaigns SET stock_left = ?2, stock_synced_at = ?3 WHERE id = ?1",
                params![s.campaign_id, s.left, ts(now)],
            )?;
        }
        meta_set(&tx, K_CURSOR, &resp.cursor.to_string())?;
        tx.commit()?;
        Ok(resp.changes.len())
    }

    /// Queue a mutation. It is durable when this returns; its id is the idempotency key.
    pub fn enqueue(&self, op: MutationOp, now: DateTime<Utc>) -> Result<Mutation> {
        enqueue_in(&self.conn, op, now)
    }

    /// Queue the member's language for the server in place of a choice not sent yet: only the
    /// last counts, so switching back and forth offline leaves one change waiting, not one per
    /// switch (which the sync bar would count as changes waiting to upload).
    pub fn enqueue_language(&self, lang: Lang, now: DateTime<Utc>) -> Result<Mutation> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM outbox WHERE state = 'pending' AND kind = ?1",
            [kind::SET_LANGUAGE],
        )?;
        let m = enqueue_in(&tx, MutationOp::SetLanguage { language: lang }, now)?;
        tx.commit()?;
        Ok(m)
    }

    /// The member's enrolled devices, as last synced.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, device_kid, created_at, current FROM devices ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                device_kid: r.get(2)?,
                created_at: parse_ts(r.get(3)?)?,
                current: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Queue the revocation of one of the member's devices and hide it from the list at once.
    pub fn revoke_device(&mut self, device_id: i64, now: DateTime<Utc>) -> Result<Mutation> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let m = enqueue_in(&tx, MutationOp::RevokeDevice { device_id }, now)?;
        tx.execute("DELETE FROM devices WHERE id = ?1", [device_id])?;
        tx.commit()?;
        Ok(m)
    }

    /// Pending mutations, oldest first.
    pub fn pending(&self) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT body, attempts FROM outbox WHERE state = 'pending' ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (body, attempts) = row?;
            match serde_json::from_str(&body) {
                Ok(mutation) => out.push(OutboxEntry { mutation, attempts }),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an outbox entry this version cannot read")
                }
            }
        }
        Ok(out)
    }

    /// The changes waiting, counted by kind, the kind waiting longest first.
    pub fn pending_kinds(&self) -> Result<Vec<unionpass_core::view::PendingKind>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, count(*) FROM outbox WHERE state = 'pending'
             GROUP BY kind ORDER BY min(seq)",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(unionpass_core::view::PendingKind {
                kind: r.get(0)?,
                n: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The refused changes the member has not seen yet, oldest first, each described with what
    /// this device knows of its subject (a coupon's title, an activity's, a device's name).
    pub fn unseen_rejections(&self) -> Result<Vec<RejectionView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body, error_code FROM outbox WHERE state = 'rejected' AND seen = 0 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        for (body, code) in rows {
            let Ok(mutation) = serde_json::from_str::<Mutation>(&body) else {
                continue; // a change this version cannot read: nothing it could say about it
            };
            out.push(RejectionView {
                id: mutation.id,
                made_at: mutation.created_at,
                what: self.describe(&mutation.op),
                code: code
                    .as_deref()
                    .and_then(ErrorCode::from_wire)
                    .unwrap_or(ErrorCode::Internal),
            });
        }
        Ok(out)
    }

    /// A refused change in the member's terms. A title this device cannot read is left empty
    /// (the notice then names the thing by its number) rather than failing the whole snapshot.
    fn describe(&self, op: &MutationOp) -> RejectedChange {
        let titles = |sql: &str, id: i64| -> (String, String) {
            self.conn
                .query_row(sql, [id], |r| Ok((r.get(0)?, r.get(1)?)))
                .ok()
                .unwrap_or_default()
        };
        let text = |sql: &str, id: i64| -> String {
            self.conn
                .query_row(sql, [id], |r| r.get(0))
                .ok()
                .unwrap_or_default()
        };
        match op {
            MutationOp::UseCoupon { coupon_id, .. } => {
                let (title_zh, title_en) = titles(
                    "SELECT title_zh, title_en FROM coupons WHERE id = ?1",
                    *coupon_id,
                );
                RejectedChange::UseCoupon {
                    coupon_id: *coupon_id,
                    title_zh,
                    title_en,
                }
            }
            MutationOp::CheckIn(c) => RejectedChange::CheckIn {
                member_no: c.member_no.clone(),
                event_title: text("SELECT title FROM events WHERE id = ?1", c.event_id),
            },
            MutationOp::SetLanguage { language } => RejectedChange::SetLanguage {
                language: *language,
            },
            MutationOp::RevokeDevice { device_id } => RejectedChange::RevokeDevice {
                device_id: *device_id,
                name: text("SELECT name FROM devices WHERE id = ?1", *device_id),
            },
            MutationOp::Redeem(r) => RejectedChange::Redeem { points: r.points },
            MutationOp::Feedback(f) => {
                let (title_zh, title_en) = titles(
                    "SELECT json_extract(body, '$.title_zh'), json_extract(body, '$.title_en')
                     FROM activities WHERE id = ?1",
                    f.activity_id,
                );
                RejectedChange::Feedback {
                    activity_id: f.activity_id,
                    title_zh,
                    title_en,
                }
            }
            MutationOp::Vote(v) => {
                let (question_zh, question_en) = titles(
                    "SELECT json_extract(body, '$.question_zh'), json_extract(body, '$.question_en')
                     FROM polls WHERE id = ?1",
                    v.poll_id,
                );
                RejectedChange::Vote {
                    poll_id: v.poll_id,
                    question_zh,
                    question_en,
                }
            }
        }
    }

    /// The member has seen these refusals: they no longer count or show (the rows stay, with
    /// their reasons, for the screens that list them, like a refused redemption on 积分).
    pub fn rejections_seen(&self, ids: &[Uuid]) -> Result<()> {
        for id in ids {
            self.conn.execute(
                "UPDATE outbox SET seen = 1 WHERE id = ?1 AND state = 'rejected'",
                [id.to_string()],
            )?;
        }
        Ok(())
    }

    pub fn mark_attempted(&self, ids: &[Uuid]) -> Result<()> {
        for id in ids {
            self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
                [id.to_string()],
            )?;
        }
        Ok(())
    }

    /// The server applied this mutation (now or on an earlier delivery): drop it.
    pub fn remove_applied(&self, id: Uuid) -> Result<()> {
        // a check-in the server now holds
        self.conn.execute(
            "UPDATE checkins SET uploaded = 1 WHERE nonce =
               (SELECT json_extract(body, '$.args.nonce') FROM outbox WHERE id = ?1 AND kind = ?2)",
            params![id.to_string(), kind::CHECK_IN],
        )?;
        // a coupon use the server took (also when it was already used from another device)
        self.conn.execute(
            "UPDATE coupons SET use_pending = 0 WHERE id =
               (SELECT json_extract(body, '$.args.coupon_id') FROM outbox WHERE id = ?1 AND kind = ?2)",
            params![id.to_string(), kind::USE_COUPON],
        )?;
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id.to_string()])?;
        Ok(())
    }

    /// The server refused this mutation: keep it, marked, for the member to see.
    pub fn mark_rejected(&self, id: Uuid, code: ErrorCode, message: &str) -> Result<()> {
        // a check-in the server did not record: the scanner's log says why
        self.conn.execute(
            "UPDATE checkins SET refused = ?2 WHERE nonce =
               (SELECT json_extract(body, '$.args.nonce') FROM outbox WHERE id = ?1 AND kind = ?3)",
            params![id.to_string(), code.as_str(), kind::CHECK_IN],
        )?;
        // a coupon use the server refused (e.g. expired): it was not used after all
        self.conn.execute(
            "UPDATE coupons SET used_at = NULL, use_pending = 0 WHERE use_pending = 1 AND id =
               (SELECT json_extract(body, '$.args.coupon_id') FROM outbox WHERE id = ?1 AND kind = ?2)",
            params![id.to_string(), kind::USE_COUPON],
        )?;
        // a redemption the server refused: kept, with the reason (nothing was held)
        crate::points::reject(&self.conn, id, code)?;
        self.conn.execute(
            "UPDATE outbox SET state = 'rejected', error_code = ?2, error_message = ?3 WHERE id = ?1",
            params![id.to_string(), code.as_str(), message],
        )?;
        Ok(())
    }

    pub fn log_sync(&self, entry: &SyncLogEntry) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sync_log(at, ok, code, pushed, pulled) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                ts(entry.at),
                entry.ok,
                entry.code.map(ErrorCode::as_str),
                entry.pushed,
                entry.pulled
            ],
        )?;
        // keep the log short
        self.conn.execute(
            "DELETE FROM sync_log WHERE id <= (SELECT max(id) FROM sync_log) - 200",
            [],
        )?;
        if entry.ok {
            self.set(K_LAST_SYNC_OK, &ts(entry.at))?;
            self.conn
                .execute("DELETE FROM meta WHERE key = ?1", [K_LAST_SYNC_ERR])?;
        } else if let Some(code) = entry.code {
            self.set(K_LAST_SYNC_ERR, code.as_str())?;
        }
        Ok(())
    }

    /// The app versions the server last said it serves.
    pub fn versions(&self) -> Result<Option<unionpass_core::api::VersionInfo>> {
        Ok(self
            .get(K_VERSIONS)?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub fn versions_checked_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.get(K_VERSIONS_AT)?.map(parse_ts).transpose()?)
    }

    pub fn set_versions(
        &self,
        info: &unionpass_core::api::VersionInfo,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.set(
            K_VERSIONS,
            &serde_json::to_string(info).expect("serializes"),
        )?;
        self.set(K_VERSIONS_AT, &ts(now))
    }

    pub fn last_sync_ok_at(&self) -> Result<Option<DateTime<Utc>>> {
        match self.get(K_LAST_SYNC_OK)? {
            Some(v) => Ok(Some(parse_ts(v)?)),
            None => Ok(None),
        }
    }

    /// The error of the last sync attempt, when it failed.
    pub fn last_sync_error(&self) -> Result<Option<ErrorCode>> {
        Ok(self
            .get(K_LAST_SYNC_ERR)?
            .as_deref()
            .and_then(ErrorCode::from_wire))
    }

    pub fn sync_log(&self, limit: usize) -> Result<Vec<SyncLogEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT at, ok, code, pushed, pulled FROM sync_log ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(SyncLogEntry {
                at: parse_ts(r.get(0)?)?,
                ok: r.get(1)?,
                code: r
                    .get::<_, Option<String>>(2)?
                    .as_deref()
                    .and_then(ErrorCode::from_wire),
                pushed: r.get(3)?,
                pulled: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Remove every trace of the signed-in member (logout). The device id and the language
    /// choice stay: they belong to the device, not the member. Freed pages are overwritten
    /// (`secure_delete`) and the WAL is truncated.
    ///
    /// With `hold` (the server ended the session; the member did not choose to sign out), the
    /// changes still waiting to be uploaded stay, held for the same member's next sign-in here
    /// ([`Store::set_account`]): a door's check-ins made offline, a coupon used at a merchant.
    /// Only their bodies and the member's id and number stay; everything the screens showed
    /// goes.
    pub fn wipe_member_data(&mut self, hold: bool) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let member = meta_get(&tx, K_MEMBER_ID)?;
        let member_no: Option<String> = tx
            .query_row("SELECT member_no FROM profile", [], |r| r.get(0))
            .optional()?;
        let held = match member {
            Some(m) if hold => {
                tx.execute("DELETE FROM outbox WHERE state <> 'pending'", [])?;
                let n: i64 = tx.query_row(
                    "SELECT count(*) FROM outbox WHERE state = 'pending'",
                    [],
                    |r| r.get(0),
                )?;
                (n > 0).then_some(m)
            }
            _ => None,
        };
        if held.is_none() {
            tx.execute("DELETE FROM outbox", [])?;
        }
        tx.execute_batch(
            "DELETE FROM profile; DELETE FROM passport; DELETE FROM sync_log;
             DELETE FROM devices; DELETE FROM trust_keys; DELETE FROM revoked_devices;
             DELETE FROM revoked_members; DELETE FROM events; DELETE FROM checkins;
             DELETE FROM checkin_conflicts; DELETE FROM campaigns; DELETE FROM coupons;
             DELETE FROM grabs; DELETE FROM reminders; DELETE FROM reminder_notices;
             DELETE FROM points_entries; DELETE FROM redemptions;
             DELETE FROM scanner_unions; DELETE FROM scanner_roster;
             DELETE FROM scanner_signup_events; DELETE FROM scanner_signups;",
        )?;
        tx.execute(
            "DELETE FROM meta WHERE key NOT IN (?1, ?2)",
            params![K_DEVICE_ID, K_LANGUAGE],
        )?;
        if let Some(m) = held {
            meta_set(&tx, K_HELD_FOR, &m)?;
            if let Some(no) = member_no {
                meta_set(&tx, K_HELD_NO, &no)?;
            }
        }
        tx.commit()?;
        self.conn.execute_batch("VACUUM;")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Queue a mutation on `conn` (which may be inside a transaction).
/// A value of the `meta` table, read inside whatever transaction `conn` is in.
pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub(crate) fn enqueue_in(
    conn: &Connection,
    op: MutationOp,
    now: DateTime<Utc>,
) -> Result<Mutation> {
    enqueue_as(conn, Uuid::new_v4(), op, now)
}

/// Queue a mutation under an id the caller made (and may have used already, e.g. for the
/// password check of a redemption).
pub(crate) fn enqueue_as(
    conn: &Connection,
    id: Uuid,
    op: MutationOp,
    now: DateTime<Utc>,
) -> Result<Mutation> {
    let mutation = Mutation {
        id,
        created_at: now,
        op,
    };
    let body = serde_json::to_string(&mutation).expect("mutations serialize");
    conn.execute(
        "INSERT INTO outbox(id, created_at, body, kind) VALUES (?1, ?2, ?3, ?4)",
        params![mutation.id.to_string(), ts(now), body, mutation.op.kind()],
    )?;
    Ok(mutation)
}

fn apply_change(
    tx: &rusqlite::Transaction<'_>,
    change: &Change,
    language_pending: bool,
    history: bool,
) -> Result<()> {
    match &change.kind {
        ChangeKind::Preferences { language } => {
            // A choice made on this device and not yet pushed wins over an older one from the server.
            if let (Some(lang), false) = (language, language_pending) {
                meta_set(tx, K_LANGUAGE, lang.tag())?;
            }
        }
        ChangeKind::Campaign(c) => {
            tx.execute(
                "INSERT INTO campaigns(id, release_at, end_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET release_at = excluded.release_at,
                   end_at = excluded.end_at, body = excluded.body",
                params![
                    c.id,
                    ts(c.release_at),
                    ts(c.end_at),
                    serde_json::to_string(c).expect("serializes")
                ],
            )?;
        }
        ChangeKind::CouponGranted(c) => crate::wallet::insert_coupon(tx, c)?,
        ChangeKind::CouponUsed { coupon_id, used_at } => {
            tx.execute(
                "UPDATE coupons SET used_at = ?2, use_pending = 0 WHERE id = ?1",
                params![coupon_id, ts(*used_at)],
            )?;
        }
        ChangeKind::CouponVoided { coupon_id, at } => {
            tx.execute(
                "UPDATE coupons SET voided_at = ?2 WHERE id = ?1",
                params![coupon_id, ts(*at)],
            )?;
        }
        ChangeKind::PointsEntry(e) => crate::points::insert_entry(tx, e)?,
        ChangeKind::Redemption(r) => crate::points::upsert_redemption(tx, r)?,
        ChangeKind::Activity(a) => {
            crate::activities::note_change(tx, a, change.at, history)?;
            crate::activities::reschedule_reminders(tx, a)?;
            tx.execute(
                "INSERT INTO activities(id, starts_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET starts_at = excluded.starts_at, body = excluded.body",
                params![a.id, ts(a.starts_at), serde_json::to_string(a).expect("serializes")],
            )?;
        }
        ChangeKind::Signup(s) => {
            crate::activities::schedule_start_reminder(tx, s)?;
            // a promotion is announced natively once (Background::announce_promotions), and
            // not at all when it is history (kept as told); a later sign-up for the same
            // activity (after a cancel) may be promoted and announced again
            if s.state == unionpass_core::activity::SignupState::Promoted {
                tx.execute(
                    "INSERT OR IGNORE INTO signup_notices(activity_id, notified) VALUES (?1, ?2)",
                    params![s.activity_id, history],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM signup_notices WHERE activity_id = ?1 AND notified = 1",
                    [s.activity_id],
                )?;
            }
            if !s.state.is_active() && !history {
                crate::activities::forget_change(tx, s.activity_id)?;
            }
            // a later state wins; the log is in order, so the last change is the latest
            tx.execute(
                "INSERT INTO my_signups(activity_id, state, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(activity_id) DO UPDATE SET state = excluded.state, body = excluded.body",
                params![
                    s.activity_id,
                    s.state.as_str(),
                    serde_json::to_string(s).expect("serializes")
                ],
            )?;
        }
        ChangeKind::Attended { activity_id, at } => {
            tx.execute(
                "INSERT OR IGNORE INTO attended(activity_id, at) VALUES (?1, ?2)",
                params![activity_id, ts(*at)],
            )?;
        }
        ChangeKind::Feedback(f) => {
            tx.execute(
                "INSERT INTO my_feedback(activity_id, rating, comment, first_given_at, updated_at, pending)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT(activity_id) DO UPDATE SET rating = excluded.rating,
                   comment = excluded.comment, first_given_at = excluded.first_given_at,
                   updated_at = excluded.updated_at, pending = 0",
                params![
                    f.activity_id,
                    f.rating,
                    f.comment,
                    ts(f.first_given_at),
                    ts(f.updated_at)
                ],
            )?;
        }
        ChangeKind::Poll(p) => {
            tx.execute(
                "INSERT INTO polls(id, closes_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET closes_at = excluded.closes_at, body = excluded.body",
                params![p.id, ts(p.closes_at), serde_json::to_string(p).expect("serializes")],
            )?;
        }
        ChangeKind::Voted { poll_id, option } => {
            tx.execute(
                "INSERT INTO my_votes(poll_id, option, pending) VALUES (?1, ?2, 0)
                 ON CONFLICT(poll_id) DO UPDATE SET option = excluded.option, pending = 0",
                params![poll_id, option],
            )?;
        }
        ChangeKind::Unknown => {
            tracing::debug!(
                seq = change.seq,
                "ignoring a change kind this version does not know"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod schema_tests {
    /// SHA-256 of each released migration, in order.
    const PINNED: [&str; 22] = [
        "1fb3f23bbf68d6d0843e203556f286214bcd1bd66ba5f0c50803adfde38ab1da",
        "6c285388f0986f677940ab6362bcffe191ff11b2e8542552a9b5cc6148333842",
        "f60a0603419fc4330a7d0965d456f525a174c9cc3a9af4009f8b613f67152278",
        "ad59d3d4c2b50c3e7253e0338bdd7879cb46fd861c559bca61fb969a61ecef81",
        "ba8d4eecfba1b2fa36d3d70cca8502e184ebdb1aee5cc31fa13f9b4b2f4413d6",
        "6d309a36038bbf9f63c0dd1e2e350faabb5e83e31e50292a56211e09ec5a3f81",
        "50eb6138c9ba22108be8be99c5df4d0f5e40e3cf236b793cc5dc609e7cfc5bc4",
        "130b8c2b417c0991306b61114dffeffcd53e3e21c97169803634fb7b24c2d1ee",
        "44de7c49eb0e4bf6181655162b2da4b44087346bdc228f116daeff08f856a619",
        "e16d57fb88049aa7f623bbfe0ed5ee8dd68df12db678aa868bf4452c623c4f55",
        "c7ca41c8d71d14bb69939346f86c7540362ebc24fbcce649998357027531a857",
        "e1f4c2ff47881fa6f873b2bb545dab767a2b3914d505a77cbbc97cc16fc3c6ca",
        "a7001a42a23bfa110f1474be9d18fd48d83dbd504bf4c697afdfeb3720973dd9",
        "acfe686d918bb55c16aa9c1589b2d216f22ec001da33bdf4abf08be8fa0cfc51",
        "80e2a1e976e36699e87d12c83547d306f002b8f7c36631d1671ce772d9919df9",
        "09001922b2fec99b677e741e7821495eb5767d8d944133eec868cb6876aa5ae9",
        "465c6f3013d9c281353f47bf3d1bff18be994bd675ee8b10693a6022bfe848d8",
        "201f78735e59174ae0d19b01c58ce35e2d5b1487334d08df6b15063a4f81ca8d",
        "c2ff6ae41d6fdee4bcef5e22f51dbf774687989309e1c0b67c1e3c2d45fc11dc",
        "b2ccd7c475941b3dc4bc20c925d8e7d416b716fb8a05245b1d1453cfd798edc8",
        "b1033f37804bff2fa7e738f5a10dbeff1d74c1e0ab57c69db5d10fd843bd07d9",
        "943f1a6e28abe131d5ca69a9feea62ad20d383bfb822f546983547f4742f6a9b",
    ];

    /// Every file in `schema/` is a listed migration, in order; released ones are unchanged.
    #[test]
    fn the_schema_folder_is_the_migration_list_and_released_steps_are_pinned() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/schema");
        let problems = unionpass_sqlite::schema_problems(&dir, super::MIGRATIONS, &PINNED);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
