//! The coupon wallet on the device: coupons arrive through sync (and from a grab's answer), are
//! listed with filters straight from SQLite (indexed, paged: a wallet can hold thousands), and are
//! marked used through the outbox, offline or not. The status rules are
//! [`unionpass_core::wallet`]'s; the SQL below applies the same boundaries.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, TransactionBehavior};
use unionpass_core::api::MutationOp;
use unionpass_core::campaign::{Category, Coupon};
use unionpass_core::view::{CouponView, WalletView};
use unionpass_core::wallet::{expiring_soon, status, CouponStatus, WalletFilter, EXPIRING_SOON};

use crate::error::{ClientError, Result};
use crate::store::{enqueue_in, parse_ts, ts, Store};

/// Rows in one page of the wallet list.
pub const PAGE: i64 = 100;

/// Store a granted coupon (from sync or a grab's answer); a known one keeps its use state.
pub(crate) fn insert_coupon(conn: &rusqlite::Connection, c: &Coupon) -> Result<()> {
    // cached: a first sync inserts thousands
    conn.prepare_cached(
        "INSERT INTO coupons(id, campaign_id, category, title_zh, title_en, code, face_value_cents,
           valid_from, valid_until, granted_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(id) DO NOTHING",
    )?
    .execute(params![
        c.id,
        c.campaign_id,
        c.category.as_str(),
        c.title_zh,
        c.title_en,
        c.code,
        c.face_value_cents,
        ts(c.valid_from),
        ts(c.valid_until),
        ts(c.granted_at),
        serde_json::to_string(c).expect("serializes")
    ])?;
    Ok(())
}

fn row(r: &rusqlite::Row<'_>, now: DateTime<Utc>) -> rusqlite::Result<CouponView> {
    let body: String = r.get(0)?;
    let mut coupon: Coupon = serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    coupon.voided_at = r.get::<_, Option<String>>(3)?.map(parse_ts).transpose()?;
    let used_at = r.get::<_, Option<String>>(1)?.map(parse_ts).transpose()?;
    Ok(CouponView {
        status: status(&coupon, used_at, now),
        expiring_soon: expiring_soon(&coupon, used_at, now),
        use_pending: r.get(2)?,
        used_at,
        coupon,
    })
}

/// The SQL condition for a status at `now` (`?` placeholders, values pushed to `args`).
fn status_sql(s: CouponStatus, now: &str, args: &mut Vec<String>) -> &'static str {
    match s {
        CouponStatus::Used => "used_at IS NOT NULL",
        CouponStatus::Voided => "used_at IS NULL AND voided_at IS NOT NULL",
        CouponStatus::Expired => {
            args.push(now.to_string());
            "used_at IS NULL AND voided_at IS NULL AND valid_until <= ?"
        }
        CouponStatus::NotYetValid => {
            args.push(now.to_string());
            args.push(now.to_string());
            "used_at IS NULL AND voided_at IS NULL AND valid_until > ? AND valid_from > ?"
        }
        CouponStatus::Usable => {
            args.push(now.to_string());
            args.push(now.to_string());
            "used_at IS NULL AND voided_at IS NULL AND valid_until > ? AND valid_from <= ?"
        }
    }
}

impl Store {
    /// The wallet screen: "expiring soon" (usable, within [`EXPIRING_SOON`]), then up to `limit`
    /// coupons matching `filter`, usable first by expiry, then the rest newest first.
    pub fn wallet(
        &self,
        filter: &WalletFilter,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<WalletView> {
        let now_s = ts(now);
        let mut expiring_stmt = self.conn.prepare_cached(
            "SELECT body, used_at, use_pending, voided_at FROM coupons
             WHERE used_at IS NULL AND voided_at IS NULL
               AND valid_from <= ?1 AND valid_until > ?1 AND valid_until <= ?2
             ORDER BY valid_until, id",
        )?;
        let expiring = expiring_stmt
            .query_map(params![now_s, ts(now + EXPIRING_SOON)], |r| row(r, now))?
            .collect::<rusqlite::Result<Vec<_>>>()?;

        // the status and search filters; the category's comes last, so that the chip counts can
        // be taken with the rest alone
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = filter.status {
            conds.push(status_sql(s, &now_s, &mut args).into());
        }
        let q = filter.query.trim().to_lowercase();
        if !q.is_empty() {
            let like = format!(
                "%{}%",
                q.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            conds.push(
                "(lower(title_zh) LIKE ? ESCAPE '\\' OR lower(title_en) LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\')"
                    .into(),
            );
            args.extend([like.clone(), like.clone(), like]);
        }
        let others = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let others_args = args.clone();
        if let Some(c) = filter.category {
            conds.push("category = ?".into());
            args.push(c.as_str().into());
        }
        let where_ = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let matching: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM coupons {where_}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        // usable first (soonest expiry first), then not yet valid, then used/expired newest first
        let order = "ORDER BY CASE
                WHEN used_at IS NULL AND voided_at IS NULL AND valid_until > ?1 AND valid_from <= ?1 THEN 0
                WHEN used_at IS NULL AND voided_at IS NULL AND valid_from > ?1 THEN 1
                ELSE 2 END,
              CASE WHEN used_at IS NULL AND voided_at IS NULL AND valid_until > ?1 AND valid_from <= ?1 THEN valid_until
                   WHEN used_at IS NULL AND voided_at IS NULL AND valid_from > ?1 THEN valid_from END,
              coalesce(used_at, voided_at, valid_until) DESC, id DESC";
        // ?1 is `now`; the filter's own placeholders come after it
        let sql = format!(
            "SELECT body, used_at, use_pending, voided_at FROM coupons {} {order} LIMIT {}",
            renumber(&where_, 2),
            limit.clamp(1, 10_000)
        );
        let mut all_args = vec![now_s.clone()];
        all_args.extend(args);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let items = stmt
            .query_map(params_from_iter(all_args.iter()), |r| row(r, now))?
            .collect::<rusqlite::Result<Vec<_>>>()?;

        let mut by_category = Vec::new();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT category, count(*) FROM coupons {others} GROUP BY category"
        ))?;
        for r in stmt.query_map(params_from_iter(others_args.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (cat, n) = r?;
            if let Some(c) = Category::parse(&cat) {
                by_category.push((c, n));
            }
        }
        by_category.sort_by_key(|(c, _)| Category::ALL.iter().position(|x| x == c));
        Ok(WalletView {
            expiring,
            items,
            matching,
            by_category,
        })
    }

    pub fn coupon(&self, id: i64, now: DateTime<Utc>) -> Result<Option<CouponView>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT body, used_at, use_pending, voided_at FROM coupons WHERE id = ?1",
                [id],
                |r| row(r, now),
            )
            .optional()?)
    }

    /// Mark a coupon used at `now`: shown as used at once, sent with the next sync. A coupon that
    /// is not usable now is refused here with the reason.
    pub fn use_coupon(&mut self, id: i64, now: DateTime<Utc>) -> Result<CouponView> {
        let view = self
            .coupon(id, now)?
            .ok_or(ClientError::InvalidInput("coupon"))?;
        match view.status {
            CouponStatus::Usable => {}
            CouponStatus::Used => return Ok(view), // a double tap
            CouponStatus::Expired => {
                return Err(ClientError::Refused(
                    unionpass_core::ErrorCode::CouponExpired,
                ))
            }
            CouponStatus::NotYetValid => {
                return Err(ClientError::Refused(
                    unionpass_core::ErrorCode::CouponNotYetValid,
                ))
            }
            CouponStatus::Voided => {
                return Err(ClientError::Refused(
                    unionpass_core::ErrorCode::CouponVoided,
                ))
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE coupons SET used_at = ?2, use_pending = 1 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        enqueue_in(
            &tx,
            MutationOp::UseCoupon {
                coupon_id: id,
                used_at: now,
            },
            now,
        )?;
        tx.commit()?;
        self.coupon(id, now)?
            .ok_or(ClientError::InvalidInput("coupon"))
    }
}

/// Shift `?` placeholders to numbered ones starting at `first` (so that `?1` can be `now`).
fn renumber(sql: &str, first: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = first;
    let mut in_quote = false;
    for c in sql.chars() {
        if c == '\'' {
            in_quote = !in_quote;
        }
        if c == '?' && !in_quote {
            out.push_str(&format!("?{n}"));
            n += 1;
        } else {
            out.push(c);
        }
    }
    out
}
