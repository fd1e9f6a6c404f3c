//! Activities (心悦活动): the list as last synced, filters, and each card with its sign-up. The
//! sign-up button opens exactly when sign-up opens by the server's clock, like the grab; before
//! that it hears a tap and says when. One tap sends one request; the shell keeps the key, so a
//! double tap or a retry is the same request.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::activity::{
    ActivityCategory, ChangeNotice, DateRange, SignupAnswer, SignupState,
};
use unionpass_core::i18n::{fill, Lang, Msg};
use unionpass_core::ipc::{
    CancelSignup, CastVote, ExportIcs, GetActivities, GiveFeedback, RefreshActivities,
    SetOpeningReminder, SignUp,
};
use unionpass_core::reminder::server_now;
use unionpass_core::view::{ActivitiesView, ActivityCard, MineGroup, PollCard};
use unionpass_core::ErrorCode;

use crate::ctx::{ctx, Ctx};
use crate::fmt::{
    activity_time, countdown, day_time, end_time, now, ticking, unbroken, when, ZONE,
};
use crate::ipc;
use crate::widgets::Joined;

fn category_msg(c: ActivityCategory) -> Msg {
    match c {
        ActivityCategory::Sports => Msg::ActCatSports,
        ActivityCategory::Culture => Msg::ActCatCulture,
        ActivityCategory::Training => Msg::ActCatTraining,
        ActivityCategory::Family => Msg::ActCatFamily,
        ActivityCategory::Volunteering => Msg::ActCatVolunteering,
        ActivityCategory::Health => Msg::ActCatHealth,
        ActivityCategory::Other => Msg::ActCatOther,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    MyUnion,
    District,
}

fn load(view: RwSignal<Option<ActivitiesView>>) {
    spawn_local(async move {
        if let Ok(v) = ipc::call(&GetActivities {}).await {
            view.set(Some(v));
        }
    });
}

/// The words for a refusal, with its "until when" where it has one.
fn refusal_text(c: Ctx, code: ErrorCode, until: Option<DateTime<Utc>>) -> String {
    let lang = c.lang.get();
    match (code, until) {
        (ErrorCode::NoShowBanned, Some(t)) => {
            fill(c.t(Msg::BannedUntil), &[("time", &day_time(t, lang))])
        }
        (ErrorCode::SignupNotOpen, Some(t)) => {
            fill(c.t(Msg::OpensAtNote), &[("time", &day_time(t, lang))])
        }
        (code, _) => c.t(code.message()).to_string(),
    }
}

/// Where the member's sign-up stands, in words.
fn mine_text(c: Ctx, card: &ActivityCard) -> Option<String> {
    let m = card.mine.as_ref()?;
    let with = (m.companions > 0)
        .then(|| {
            format!(
                " · {}",
                fill(c.t(Msg::CompanionsN), &[("n", &m.companions.to_string())])
            )
        })
        .unwrap_or_default();
    Some(match m.state {
        SignupState::Confirmed => format!("{}{with}", c.t(Msg::MyConfirmed)),
        SignupState::Promoted => format!("{}{with}", c.t(Msg::MyPromoted)),
        SignupState::Waitlisted => format!(
            "{}{with}",
            fill(
                c.t(Msg::MyWaitlisted),
                &[("n", &m.position.unwrap_or(0).to_string())]
            )
        ),
        SignupState::Cancelled => c.t(Msg::MyCancelled).to_string(),
    })
}

/// A needs poll: one option, changeable until the close; the results after voting.
#[component]
fn PollItem(
    card: PollCard,
    view: RwSignal<Option<ActivitiesView>>,
    unfolded: RwSignal<Option<i64>>,
) -> impl IntoView {
    let c = ctx();
    let id = card.poll.id;
    // folded to its question until the member opens it: the activities come first on a phone
    let shown = move || unfolded.get() == Some(id);
    let chosen = RwSignal::new(card.mine);
    let error = RwSignal::new(None::<ErrorCode>);
    let open = now() < card.poll.closes_at;
    let send = ipc::action(move |req: CastVote| async move {
        match ipc::call(&req).await {
            Ok(v) => {
                error.set(None);
                view.set(Some(v));
            }
            Err(code) => error.set(Some(code)),
        }
    });
    let busy = send.pending();
    let total: i64 = card.counts.as_ref().map(|c| c.iter().sum()).unwrap_or(0);
    let question = {
        let p = card.poll.clone();
        move || match c.lang.get() {
            Lang::ZhCn => p.question_zh.clone(),
            Lang::En => p.question_en.clone(),
        }
    };
    let voted = card.mine.is_some();
    let closes = card.poll.closes_at;
    let counts = card.counts.clone();
    let mine = card.mine;
    let pending = card.pending;
    let no_counts = card.counts.is_none();
    let options = card.poll.options.clone();
    let closes_text = move || {
        fill(
            c.t(Msg::PollClosesAt),
            &[("time", &day_time(closes, c.lang.get()))],
        )
    };
    // where the member stands, beside the close: voted or not, or closed
    let state = move || {
        if pending {
            c.t(Msg::PollPending)
        } else if voted {
            c.t(Msg::PollVoted)
        } else if open {
            c.t(Msg::PollNotVoted)
        } else {
            c.t(Msg::PollClosed)
        }
    };
    let action = move || {
        if shown() {
            c.t(Msg::PollHide)
        } else if open && !voted {
            c.t(Msg::PollShow)
        } else {
            c.t(Msg::PollSeeResults)
        }
    };
    view! {
        <li class="poll campaign" id=format!("poll-{id}")>
            <button type="button" class="poll-head" id=format!("poll-open-{id}")
                aria-expanded=move || shown().to_string() aria-controls=format!("poll-body-{id}")
                on:click=move |_| unfolded.update(|u| *u = if *u == Some(id) { None } else { Some(id) })>
                <span class="poll-question">
                    <span class="coupon-title" id=format!("poll-question-{id}")>{question}</span>
                    <Joined parts=vec![
                        closes_text.into_any(),
                        view! { <span id=format!("poll-state-{id}")>{state}</span> }.into_any(),
                    ]/>
                </span>
                <span class="poll-action">{action}</span>
            </button>
            <Show when=shown>
                <div id=format!("poll-body-{id}")>
                    <div class="poll-options" role="radiogroup" aria-labelledby=format!("poll-question-{id}")>
                        {options.iter().enumerate().map(|(i, o)| {
                            let i = i as i64;
                            let (zh, en) = (o.zh.clone(), o.en.clone());
                            let n = counts.as_ref().and_then(|c| c.get(i as usize).copied());
                            let share = n.map(|n| if total > 0 { n * 100 / total } else { 0 });
                            view! {
                                <button type="button" role="radio" class="choice poll-option" id=format!("poll-{id}-{i}")
                                    class:active=move || chosen.get() == Some(i)
                                    aria-checked=move || (chosen.get() == Some(i)).to_string()
                                    prop:disabled=!open
                                    on:click=move |_| chosen.set(Some(i))>
                                    <span class="poll-label">{move || match c.lang.get() { Lang::ZhCn => zh.clone(), Lang::En => en.clone() }}
                                        {(mine == Some(i)).then(|| view! { <span class="muted small">" · "{move || c.t(Msg::PollYourVote)}</span> })}
                                    </span>
                                    {n.map(|n| view! {
                                        <span class="poll-count small">{move || fill(c.t(Msg::PollVotes), &[("n", &n.to_string())])}</span>
                                        <span class="poll-bar" style=format!("width: {}%", share.unwrap_or(0))></span>
                                    })}
                                </button>
                            }
                        }).collect_view()}
                    </div>
                    <p class="muted small" id=format!("poll-note-{id}")>
                        // pending: the head says it is saved; here, when the results come
                        {move || if pending {
                            c.t(Msg::PollResultsOffline).to_string()
                        } else if !voted {
                            c.t(Msg::PollResultsAfter).to_string()
                        } else if no_counts {
                            c.t(Msg::PollResultsOffline).to_string()
                        } else {
                            String::new()
                        }}
                    </p>
                    <Show when=move || error.get().is_some()>
                        <p class="notice warn" role="alert">{move || error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
                    </Show>
                    <Show when=move || open>
                        <button type="button" class="secondary" id=format!("poll-vote-{id}")
                            prop:disabled=move || { chosen.get().is_none() || chosen.get() == mine || busy.get() }
                            on:click=move |_| {
                                if let Some(option) = chosen.get_untracked() {
                                    ipc::dispatch_once(send, CastVote { poll_id: id, option });
                                }
                            }>
                            {move || if voted { c.t(Msg::PollChange) } else { c.t(Msg::PollVote) }}
                        </button>
                    </Show>
                </div>
            </Show>
        </li>
    }
}

/// After the activity (from its end): the member who attended rates it 1–5 and may say more;
/// queued offline, editable for a week after it was first given.
#[component]
fn FeedbackBlock(card: ActivityCard, view: RwSignal<Option<ActivitiesView>>) -> impl IntoView {
    let c = ctx();
    let id = card.activity.id;
    let given = card.feedback.clone();
    let rating = RwSignal::new(given.as_ref().map(|f| f.rating).unwrap_or(0));
    let comment = RwSignal::new(
        given
            .as_ref()
            .map(|f| f.comment.clone())
            .unwrap_or_default(),
    );
    let error = RwSignal::new(None::<ErrorCode>);
    let editable_until = given
        .as_ref()
        .map(|f| f.first_given_at + unionpass_core::activity::FEEDBACK_EDITABLE);
    let locked = editable_until.is_some_and(|u| now() > u);
    let left = move || {
        unionpass_core::activity::MAX_COMMENT_CHARS as i64
            - comment.with(|t| t.chars().count()) as i64
    };
    let send = ipc::action(move |req: GiveFeedback| async move {
        match ipc::call(&req).await {
            Ok(v) => {
                error.set(None);
                view.set(Some(v));
            }
            Err(code) => error.set(Some(code)),
        }
    });
    let busy = send.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        ipc::dispatch_once(
            send,
            GiveFeedback {
                activity_id: id,
                rating: rating.get_untracked(),
                comment: comment.get_untracked(),
            },
        );
    };
    let note = {
        let given = given.clone();
        move || {
            let f = given.as_ref()?;
            Some(if card.feedback_pending {
                c.t(Msg::FeedbackPendingNote).to_string()
            } else {
                fill(
                    c.t(Msg::FeedbackGivenNote),
                    &[
                        ("n", &f.rating.to_string()),
                        (
                            "time",
                            &day_time(
                                f.first_given_at + unionpass_core::activity::FEEDBACK_EDITABLE,
                                c.lang.get(),
                            ),
                        ),
                    ],
                )
            })
        }
    };
    let has_given = given.is_some();
    view! {
        <form class="feedback" id=format!("feedback-{id}") on:submit=submit>
            <h3 class="small">{move || c.t(Msg::FeedbackTitle)}</h3>
            <div class="stars" role="radiogroup" aria-label=move || c.t(Msg::FeedbackTitle)>
                {(1..=5i64).map(|n| view! {
                    <button type="button" role="radio" class="star" id=format!("star-{id}-{n}")
                        class:on=move || { rating.get() >= n }
                        aria-checked=move || (rating.get() == n).to_string()
                        aria-label=move || fill(c.t(Msg::FeedbackStars), &[("n", &n.to_string())])
                        prop:disabled=locked
                        on:click=move |_| rating.set(n)>"★"</button>
                }).collect_view()}
            </div>
            <label for=format!("feedback-comment-{id}")>{move || c.t(Msg::FeedbackComment)}</label>
            <textarea id=format!("feedback-comment-{id}") maxlength="500" rows="3"
                prop:value=move || comment.get() prop:disabled=locked
                on:input=move |ev| comment.set(event_target_value(&ev))></textarea>
            <p class="muted small">{move || fill(c.t(Msg::CharsLeft), &[("n", &left().max(0).to_string())])}</p>
            <p class="small" id=format!("feedback-note-{id}") role="status">{note}</p>
            <Show when=move || error.get().is_some()>
                <p class="notice warn" role="alert">{move || error.get().map(|e| c.t(e.message())).unwrap_or_default()}</p>
            </Show>
            <Show when=move || !locked>
                <button type="submit" class="secondary" id=format!("feedback-send-{id}")
                    prop:disabled=move || { rating.get() == 0 || busy.get() }>
                    {move || if has_given { c.t(Msg::FeedbackUpdate) } else { c.t(Msg::FeedbackSubmit) }}
                </button>
            </Show>
        </form>
    }
}

#[component]
fn ActivityItem(
    card: ActivityCard,
    view: RwSignal<Option<ActivitiesView>>,
    tick: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    let c = ctx();
    let a = card.activity.clone();
    let id = a.id;
    let rules = a.signup.clone();
    let offset = move || view.with(|v| v.as_ref().and_then(|v| v.offset));
    let server_time = move || server_now(tick.get(), offset());
    // over by the server's clock: places and a calendar entry no longer matter
    let ends_at = a.ends_at;
    let over = move || server_time() >= ends_at;
    let companions = RwSignal::new(0i64);
    let answer = RwSignal::new(None::<SignupAnswer>);
    let error = RwSignal::new(None::<ErrorCode>);
    let early = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let saved = RwSignal::new(None::<unionpass_core::ipc::IcsSaved>);
    let opening_reminder = card.opening_reminder;
    let remind = move |on: bool| {
        spawn_local(async move {
            match ipc::call(&SetOpeningReminder {
                activity_id: id,
                on,
            })
            .await
            {
                Ok(v) => view.set(Some(v)),
                Err(code) => error.set(Some(code)),
            }
        });
    };
    let rules_none = a.signup.is_none();
    let live = card.mine.as_ref().is_some_and(|m| m.state.is_active());
    let has_seats = card.mine.as_ref().is_some_and(|m| m.state.has_seats());
    // the status in green: a place, or the member came (a walk-in too, with no sign-up); not
    // once the activity is cancelled, nor for a place not used once it is over
    let attended = card.attended;
    let cancelled = a.cancelled_at.is_some();
    let status_ok = move || (attended || has_seats && !over()) && !cancelled;
    let eligible = card.eligible;
    let title = {
        let a = a.clone();
        move || a.title(c.lang.get()).to_string()
    };
    let description = {
        let a = a.clone();
        move || match c.lang.get() {
            Lang::ZhCn => a.description_zh.clone(),
            Lang::En => a.description_en.clone(),
        }
    };
    let sign_up = ipc::action(move |req: SignUp| async move {
        error.set(None);
        match ipc::call(&req).await {
            Ok(x) => {
                answer.set(Some(x));
                load(view);
            }
            Err(code) => error.set(Some(code)),
        }
    });
    let busy = sign_up.pending();
    let cancel = ipc::action(move |req: CancelSignup| async move {
        error.set(None);
        match ipc::call(&req).await {
            Ok(_) => {
                confirming.set(false);
                answer.set(None);
                load(view);
            }
            Err(code) => error.set(Some(code)),
        }
    });
    let cancelling = cancel.pending();
    // where the window stands by the server's clock
    let (opens_at, closes_at) = rules
        .as_ref()
        .map(|r| (Some(r.opens_at), Some(r.closes_at)))
        .unwrap_or((None, None));
    let before_open = move || opens_at.is_some_and(|o| server_time() < o);
    let open = move || {
        opens_at.is_some_and(|o| server_time() >= o) && closes_at.is_some_and(|c| server_time() < c)
    };
    let offline = move || {
        c.snap
            .with(|s| s.as_ref().is_some_and(|s| s.sync.offline()))
    };
    let can_sign_up = rules.is_some() && !live && !cancelled && eligible;
    let waiting = move || can_sign_up && before_open();
    // the no-show rule, as the server said with the last counts: said before the member asks,
    // and the button closed (the server would refuse the same)
    let is_popular = rules.as_ref().is_some_and(|r| r.popular);
    let banned = move || {
        view.with(|v| v.as_ref().and_then(|v| v.ban_until))
            .filter(|u| can_sign_up && is_popular && *u > server_time())
    };
    Effect::new(move |_| {
        if !before_open() && early.get_untracked() {
            early.set(false);
        }
    });
    let press = move |_| {
        if waiting() {
            early.set(true);
        } else {
            ipc::dispatch_once(
                sign_up,
                SignUp {
                    activity_id: id,
                    companions: companions.get_untracked(),
                },
            );
        }
    };
    // an answer that did not come: sent again (the same key) a few times while the card is open
    let retries = RwSignal::new(0u32);
    Effect::new(move |_| {
        if error.get() == Some(ErrorCode::Offline) && retries.get_untracked() < 5 {
            set_timeout(
                move || {
                    if error.get_untracked() == Some(ErrorCode::Offline)
                        && !sign_up.pending().get_untracked()
                    {
                        retries.update(|n| *n += 1);
                        ipc::dispatch_once(
                            sign_up,
                            SignUp {
                                activity_id: id,
                                companions: companions.get_untracked(),
                            },
                        );
                    }
                },
                std::time::Duration::from_secs(3),
            );
        }
    });
    // the counts change with every refresh; the row (and the companions chosen) stays: the card
    // as last refreshed
    let latest = {
        let first = card.clone();
        move || {
            view.with(|v| {
                v.as_ref()
                    .and_then(|v| v.cards.iter().find(|x| x.activity.id == id).cloned())
            })
            .unwrap_or_else(|| first.clone())
        }
    };
    let seats_text = {
        let latest = latest.clone();
        move || {
            let card = latest();
            if over() {
                return String::new();
            }
            let Some(r) = &card.activity.signup else {
                return c.t(Msg::WalkIn).to_string();
            };
            let counts = match (card.seats_left, card.waitlist_left) {
                // the member's place is kept: the waitlist's room is none of their worry
                (Some(0), _) if has_seats => c.t(Msg::SeatsFull).to_string(),
                (Some(0), Some(0)) => c.t(Msg::SeatsAllTaken).to_string(),
                (Some(0), Some(w)) => fill(c.t(Msg::SeatsFullWaitlist), &[("n", &w.to_string())]),
                (Some(left), _) => fill(
                    c.t(Msg::SeatsLeft),
                    &[("left", &left.to_string()), ("seats", &r.seats.to_string())],
                ),
                _ => fill(
                    c.t(Msg::SeatsLeft),
                    &[("left", "–"), ("seats", &r.seats.to_string())],
                ),
            };
            let as_of = card
                .counted_at
                .map(|t| fill(c.t(Msg::CountsAsOf), &[("time", &when(t, c.lang.get()))]))
                .unwrap_or_default();
            format!("{counts}{as_of}")
        }
    };
    let window_text = move || {
        let lang = c.lang.get();
        match (opens_at, closes_at) {
            (Some(o), _) if before_open() => {
                if (o - server_time()).num_hours() < 24 {
                    fill(
                        c.t(Msg::SignupOpensIn),
                        &[(
                            "left",
                            &countdown((o - server_time()).num_milliseconds(), lang),
                        )],
                    )
                } else {
                    fill(c.t(Msg::SignupOpensAt), &[("time", &day_time(o, lang))])
                }
            }
            (_, Some(cl)) => fill(c.t(Msg::SignupClosesAt), &[("time", &day_time(cl, lang))]),
            _ => String::new(),
        }
    };
    let status_text = {
        let card = card.clone();
        move || {
            if cancelled {
                return Some(c.t(Msg::ActivityCancelledNote).to_string());
            }
            // once the member came, that is what their status is
            if card.attended {
                return Some(c.t(Msg::MyAttended).to_string());
            }
            // over, and the place was not used: said so, not "已报名"
            if has_seats && over() {
                return Some(c.t(Msg::MineMissed).to_string());
            }
            if !eligible {
                return Some(c.t(Msg::ActivityNotEligible).to_string());
            }
            if let Some(until) = banned() {
                return Some(fill(
                    c.t(Msg::BannedUntil),
                    &[("time", &day_time(until, c.lang.get()))],
                ));
            }
            mine_text(c, &card)
        }
    };
    let answer_text = move || match (error.get(), answer.get()) {
        (Some(ErrorCode::Offline), _) => Some(c.t(Msg::SignupRetry).to_string()),
        (Some(code), _) => Some(c.t(code.message()).to_string()),
        (None, Some(SignupAnswer::Refused { refusal })) => {
            Some(refusal_text(c, refusal.code, refusal.until))
        }
        // the countdown beside it says how long: not said twice
        _ if early.get() && before_open() => Some(c.t(Msg::TooEarlySignup).to_string()),
        _ => None,
    };
    let max_companions = rules.as_ref().map(|r| r.max_companions).unwrap_or(0);
    // the party chosen is larger than the places left (as last synced), though some are left:
    // say what a sign-up would bring before it is sent
    let party_note = {
        let latest = latest.clone();
        move || {
            let card = latest();
            let party = 1 + companions.get();
            match (card.seats_left, card.waitlist_left) {
                (Some(left), waitlist) if left > 0 && party > left => Some(fill(
                    c.t(if waitlist == Some(0) {
                        Msg::PartyTooBig
                    } else {
                        Msg::PartyTooBigWaitlist
                    }),
                    &[("n", &party.to_string())],
                )),
                _ => None,
            }
        }
    };
    // as last counted, the party does not fit the places left but the waitlist has room: the
    // button says where the sign-up goes
    let to_waitlist = Signal::derive({
        let latest = latest.clone();
        move || {
            let card = latest();
            let party = 1 + companions.get();
            matches!((card.seats_left, card.waitlist_left), (Some(left), Some(w)) if party > left && w > 0)
        }
    });
    let cancel_until = rules.as_ref().map(|r| r.cancel_until);
    let can_cancel = move || live && !cancelled && cancel_until.is_some_and(|u| server_time() < u);
    let popular = rules.as_ref().is_some_and(|r| r.popular);
    let start = a.starts_at;
    let end = a.ends_at;
    let here = a.clone();
    view! {
        <li class="activity campaign" id=format!("activity-{id}") class:inactive=cancelled || !eligible>
            <div class="campaign-head">
                <span class="badge campaign-cat">{move || c.t(category_msg(a.category))}</span>
                <div class="campaign-main">
                    <span class="coupon-title">{title}
                        {popular.then(|| view! { <span class="badge hot">{move || c.t(Msg::ActivityPopular)}</span> })}
                    </span>
                    <span class="muted small" id=format!("activity-when-{id}")>
                        {move || unbroken(activity_time(start, end, c.lang.get()))}
                    </span>
                    <span class="muted small">{move || fill(c.t(Msg::ActivityPlace), &[("place", here.place_in(c.lang.get()))])}</span>
                </div>
            </div>
            <p class="small activity-desc">{description}</p>
            <p class="small" id=format!("activity-seats-{id}")>{seats_text}</p>
            {(max_companions > 0).then(|| view! {
                <p class="muted small">{move || fill(c.t(Msg::CompanionsAllowed), &[("n", &max_companions.to_string())])}</p>
            })}
            <p class="activity-status" id=format!("activity-status-{id}") class:ok=status_ok>{status_text}</p>
            // a place not used counts against the member (the no-show rule): said where it shows
            <Show when=move || has_seats && over() && !attended && !cancelled>
                <p class="muted small" id=format!("activity-missed-{id}")>{move || c.t(Msg::MissedHint)}</p>
            </Show>
            // a move since the member signed up (the sync also said it natively; a cancel is the
            // status line's)
            {match card.change {
                Some(ChangeNotice::Moved { was_starts_at, was_ends_at }) => Some(view! {
                    <p class="small warn-text" id=format!("activity-change-{id}") role="status">
                        // the old time in the words of the new one above it ("周三 12-09 07:33 至
                        // 09:33"), not in another style
                        {move || {
                            let lang = c.lang.get();
                            let was = fill(
                                c.t(Msg::ActivityTime),
                                &[
                                    ("start", &day_time(was_starts_at, lang)),
                                    ("end", &end_time(was_starts_at, was_ends_at, lang)),
                                ],
                            );
                            fill(c.t(Msg::ActivityMovedNote), &[("was", &was)])
                        }}
                    </p>
                }),
                _ => None,
            }}
            <Show when=move || can_sign_up>
                <div class="campaign-action">
                    <span class="countdown-text" id=format!("activity-window-{id}")>{window_text}</span>
                    <div class="signup-controls">
                        {(max_companions > 0).then(|| view! {
                            <span class="stepper" role="group" aria-label=move || c.t(Msg::CompanionsLabel)>
                                <span class="small">{move || c.t(Msg::CompanionsLabel)}</span>
                                <button type="button" class="step" id=format!("companions-less-{id}")
                                    prop:disabled=move || { companions.get() <= 0 || busy.get() }
                                    on:click=move |_| companions.update(|n| *n = (*n - 1).max(0))>"−"</button>
                                <span class="step-value" id=format!("companions-{id}")>{move || companions.get()}</span>
                                <button type="button" class="step" id=format!("companions-more-{id}")
                                    prop:disabled=move || { companions.get() >= max_companions || busy.get() }
                                    on:click=move |_| companions.update(|n| *n = (*n + 1).min(max_companions))>"+"</button>
                            </span>
                        })}
                        <button type="button" class="primary grab" id=format!("signup-{id}")
                            class:waiting=waiting
                            aria-disabled=move || if waiting() { "true" } else { "false" }
                            prop:disabled=move || banned().is_some() || (!waiting() && (!open() || busy.get() || offline()))
                            on:click=press>
                            {move || if busy.get() {
                                c.t(Msg::SigningUp)
                            } else if waiting() {
                                c.t(Msg::SignupWaitButton)
                            } else if to_waitlist.get() {
                                c.t(Msg::SignupWaitlistButton)
                            } else {
                                c.t(Msg::SignupButton)
                            }}
                        </button>
                    </div>
                </div>
                {
                    let party_note = party_note.clone();
                    move || party_note().map(|note| view! {
                        <p class="small warn-text" id=format!("activity-party-{id}")>{note}</p>
                    })
                }
            </Show>
            // a native reminder before sign-up opens (with the window closed too)
            <Show when=move || can_sign_up && before_open()>
                <div class="row reminder">
                    {move || if opening_reminder {
                        view! {
                            <span class="small ok" id=format!("remind-open-state-{id}")>{move || c.t(Msg::OpeningReminderSet)}</span>
                            <button type="button" class="link" id=format!("remind-open-off-{id}")
                                on:click=move |_| remind(false)>{move || c.t(Msg::ReminderOff)}</button>
                        }.into_any()
                    } else {
                        view! {
                            <button type="button" class="remind" id=format!("remind-open-{id}")
                                on:click=move |_| remind(true)>{move || c.t(Msg::RemindOpening)}</button>
                        }.into_any()
                    }}
                </div>
            </Show>
            <p class="grab-answer" class:room=move || can_sign_up id=format!("activity-answer-{id}") role="status">
                {move || answer_text().unwrap_or_default()}
            </p>
            // a place (or a walk-in) is worth a calendar entry, until it is over or the member is
            // there already
            <Show when=move || (has_seats || rules_none) && !cancelled && !attended && !over()>
                <div class="row calendar-export">
                    <button type="button" class="secondary small-button" id=format!("ics-{id}")
                        on:click=move |_| {
                            spawn_local(async move {
                                match ipc::call(&ExportIcs { activity_id: id }).await {
                                    Ok(path) => saved.set(Some(path)),
                                    Err(code) => error.set(Some(code)),
                                }
                            });
                        }>{move || c.t(Msg::AddToCalendar)}</button>
                    // the file and its folder by name; the whole path on hover
                    <span class="muted small" id=format!("ics-note-{id}") title=move || saved.get().map(|s| s.path)>
                        {move || saved.get().map(|s| {
                            let file = s.path.rsplit(['/', '\\']).next().unwrap_or_default();
                            let msg = if s.in_downloads { Msg::CalendarSaved } else { Msg::CalendarSavedHome };
                            fill(c.t(msg), &[("file", file)])
                        }).unwrap_or_default()}
                    </span>
                </div>
            </Show>
            // feedback from the activity's end by the server's clock; until then, from when
            {card.attended.then(|| {
                let card = card.clone();
                view! {
                    <Show when=move || { server_time() >= end }
                        fallback=move || view! {
                            <p class="muted small" id=format!("feedback-later-{id}")>
                                {move || fill(c.t(Msg::FeedbackAfterEnd), &[("time", &day_time(end, c.lang.get()))])}
                            </p>
                        }>
                        <FeedbackBlock card=card.clone() view/>
                    </Show>
                }
            })}
            <Show when=can_cancel>
                <div class="activity-cancel">
                    <span class="muted small">{move || cancel_until.map(|u| fill(c.t(Msg::CancelUntil), &[("time", &day_time(u, c.lang.get()))])).unwrap_or_default()}</span>
                    <Show when=move || confirming.get()
                        fallback=move || view! {
                            <button type="button" class="secondary" id=format!("cancel-signup-{id}")
                                on:click=move |_| confirming.set(true)>{move || c.t(Msg::CancelSignup)}</button>
                        }>
                        <div class="confirm" id=format!("cancel-confirm-{id}")>
                            <p role="alert">{move || c.t(Msg::CancelSignupConfirm)}</p>
                            <div class="actions">
                                <button type="button" class="secondary" on:click=move |_| confirming.set(false)>{move || c.t(Msg::Back)}</button>
                                <button type="button" class="danger" id=format!("cancel-signup-yes-{id}")
                                    prop:disabled=move || cancelling.get()
                                    on:click=move |_| ipc::dispatch_once(cancel, CancelSignup { activity_id: id })>
                                    {move || c.t(Msg::CancelSignupYes)}
                                </button>
                            </div>
                        </div>
                    </Show>
                </div>
            </Show>
        </li>
    }
}

#[component]
pub fn ActivitiesList() -> impl IntoView {
    let c = ctx();
    let view = RwSignal::new(None::<ActivitiesView>);
    let tick = ticking(std::time::Duration::from_millis(200));
    let category = RwSignal::new(None::<ActivityCategory>);
    let scope = RwSignal::new(Scope::All);
    let date = RwSignal::new(DateRange::Any);
    let only_mine = RwSignal::new(false);
    Effect::new(move |_| {
        c.snap.track();
        load(view);
    });
    // live seat counts and the server clock, each time the screen opens (offline: as last known)
    spawn_local(async move {
        if let Ok(v) = ipc::call(&RefreshActivities {}).await {
            view.set(Some(v));
        }
    });
    let all = move || view.with(|v| v.as_ref().map(|v| v.cards.clone()).unwrap_or_default());
    // the poll the member unfolded (one at a time)
    let unfolded_poll = RwSignal::new(None::<i64>);
    let polls = move || {
        view.with(|v| {
            v.as_ref()
                .map(|v| {
                    v.polls
                        .iter()
                        .filter(|p| p.eligible)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let my_union = move || {
        c.snap.with(|s| {
            s.as_ref()
                .and_then(|s| s.profile.as_ref())
                .map(|p| p.union.id)
        })
    };
    // the server's time to the minute: the groups and the date filter follow it (an activity
    // that ends while the screen is open moves on) without filtering again at every tick
    let minute = Memo::new(move |_| {
        use chrono::DurationRound;
        let t = server_now(tick.get(), view.with(|v| v.as_ref().and_then(|v| v.offset)));
        t.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(t)
    });
    let shown = move || {
        all()
            .into_iter()
            .filter(|card| {
                category
                    .get()
                    .is_none_or(|cat| card.activity.category == cat)
            })
            .filter(|card| match scope.get() {
                Scope::All => true,
                Scope::MyUnion => {
                    card.activity.union_id.is_some() && card.activity.union_id == my_union()
                }
                Scope::District => card.activity.union_id.is_none(),
            })
            .filter(|card| date.get().holds(&card.activity, minute.get(), ZONE))
            .filter(|card| !only_mine.get() || card.mine_group(minute.get()).is_some())
            .collect::<Vec<_>>()
    };
    // the list: what is coming up or going on first, soonest first; the week's ended ones after
    // it under their own heading, the latest first (they were first, by their earlier start)
    let upcoming = Signal::derive(move || {
        shown()
            .into_iter()
            .filter(|card| card.activity.ends_at > minute.get())
            .collect::<Vec<_>>()
    });
    let ended = Signal::derive(move || {
        let mut cards = shown()
            .into_iter()
            .filter(|card| card.activity.ends_at <= minute.get())
            .collect::<Vec<_>>();
        cards.reverse();
        cards
    });
    // 我的活动: the member's own, upcoming, attended and missed, each under its heading
    let group = move |g: MineGroup| {
        Signal::derive(move || {
            shown()
                .into_iter()
                .filter(|card| card.mine_group(minute.get()) == Some(g))
                .collect::<Vec<_>>()
        })
    };
    let mine_section = move |g: MineGroup, id: &'static str, heading: Msg| {
        let cards = group(g);
        view! {
            <Show when=move || !cards.with(Vec::is_empty)>
                <h2 class="small mine-heading" id=format!("{id}-heading")>{move || c.t(heading)}</h2>
                <CardList cards id view tick/>
            </Show>
        }
    };
    let date_chip = move |d: DateRange| {
        let label = match d {
            DateRange::Any => Msg::DateAny,
            DateRange::Today => Msg::DateToday,
            DateRange::NextSevenDays => Msg::DateWeek,
            DateRange::ThisMonth => Msg::DateMonth,
        };
        view! {
            <button type="button" class="chip" id=format!("act-date-{}", d.as_str())
                class:active=move || date.get() == d
                role="radio" aria-checked=move || (date.get() == d).to_string()
                on:click=move |_| date.set(d)>{move || c.t(label)}</button>
        }
    };
    let scope_chip = move |s: Scope, id: &'static str, label: Msg| {
        view! {
            <button type="button" class="chip" id=id class:active=move || scope.get() == s
                role="radio" aria-checked=move || (scope.get() == s).to_string()
                on:click=move |_| scope.set(s)>{move || c.t(label)}</button>
        }
    };
    view! {
        <section class="activities">
            <h1 class="part-title">{move || c.t(Msg::ActivitiesTitle)}</h1>
            <Show when=move || !polls().is_empty()>
                // on a phone for screen readers only: the folded poll's question and "去投票"
                // say what it is, and the activities start a heading's height sooner
                <h2 class="phone-hidden">{move || c.t(Msg::PollsTitle)}</h2>
                <ul id="polls" class="list cards">
                    <For each=polls
                        key=|p| (p.poll.id, p.mine, p.pending, p.counts.clone(), p.counted_at)
                        let:card>
                        <PollItem card view unfolded=unfolded_poll/>
                    </For>
                </ul>
            </Show>
            <Show when=move || !all().is_empty()>
                <div class="chips scroll" role="radiogroup" aria-label=move || c.t(Msg::FilterCategory)>
                    <button type="button" class="chip" id="act-cat-all" class:active=move || category.get().is_none()
                        role="radio" aria-checked=move || (category.get().is_none()).to_string()
                        on:click=move |_| category.set(None)>{move || c.t(Msg::AllCategories)}</button>
                    {ActivityCategory::ALL.into_iter().map(|cat| view! {
                        <button type="button" class="chip" id=format!("act-cat-{}", cat.as_str())
                            class:active=move || category.get() == Some(cat)
                            role="radio" aria-checked=move || (category.get() == Some(cat)).to_string()
                            on:click=move |_| category.set(Some(cat))>{move || c.t(category_msg(cat))}</button>
                    }).collect_view()}
                </div>
                // whose and when on one line: on a phone it scrolls sideways, as the categories
                // do, so the list starts two rows of chips below the title, not three. 我的活动
                // leads it, so that it is in sight on a phone without scrolling the row
                <div class="chips scroll chip-groups">
                    <div class="chip-group">
                        // a switch of its own: on with any of the choices after it
                        <button type="button" class="chip lead" id="act-mine" class:active=move || only_mine.get()
                            aria-pressed=move || only_mine.get().to_string()
                            on:click=move |_| only_mine.update(|m| *m = !*m)>{move || c.t(Msg::OnlyMine)}</button>
                        <div class="chip-group" role="radiogroup" aria-label=move || c.t(Msg::FilterScope)>
                            {scope_chip(Scope::All, "act-scope-all", Msg::ScopeAll)}
                            {scope_chip(Scope::MyUnion, "act-scope-union", Msg::ScopeMyUnion)}
                            {scope_chip(Scope::District, "act-scope-district", Msg::ScopeDistrict)}
                        </div>
                    </div>
                    <span class="chip-sep" aria-hidden="true"></span>
                    <div class="chip-group" role="radiogroup" aria-label=move || c.t(Msg::FilterDate)>
                        {DateRange::ALL.into_iter().map(date_chip).collect_view()}
                    </div>
                </div>
            </Show>
            <Show when=move || !shown().is_empty()
                fallback=move || view! {
                    <p id="no-activities" class="notice">
                        {move || if all().is_empty() { c.t(Msg::NoActivities) } else { c.t(Msg::NoMatchingActivities) }}
                    </p>
                }>
                <Show when=move || only_mine.get()
                    fallback=move || view! {
                        <Show when=move || !upcoming.with(Vec::is_empty)
                            fallback=move || view! { <p id="no-upcoming" class="notice">{move || c.t(Msg::NoUpcomingActivities)}</p> }>
                            <CardList cards=upcoming id="activities" view tick/>
                        </Show>
                        <Show when=move || !ended.with(Vec::is_empty)>
                            <h2 class="small mine-heading" id="ended-heading">{move || c.t(Msg::RecentlyEnded)}</h2>
                            <CardList cards=ended id="activities-ended" view tick/>
                        </Show>
                    }>
                    {mine_section(MineGroup::Upcoming, "mine-upcoming", Msg::MineUpcoming)}
                    {mine_section(MineGroup::Attended, "mine-attended", Msg::MineAttended)}
                    {mine_section(MineGroup::Missed, "mine-missed", Msg::MineMissed)}
                </Show>
            </Show>
        </section>
    }
}

/// Activity cards, each rebuilt when what it shows changed.
#[component]
fn CardList(
    cards: Signal<Vec<ActivityCard>>,
    id: &'static str,
    view: RwSignal<Option<ActivitiesView>>,
    tick: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    view! {
        <ul id=id class="list cards">
            <For each=move || cards.get()
                key=|card| (
                    card.activity.id,
                    card.activity.starts_at,
                    card.activity.ends_at,
                    card.activity.cancelled_at,
                    card.mine.as_ref().map(|m| (m.state.as_str(), m.position, m.companions)),
                    card.eligible,
                    card.attended,
                    card.feedback.as_ref().map(|f| (f.rating, f.updated_at)),
                    card.feedback_pending,
                    card.opening_reminder,
                    card.change,
                )
                let:card>
                <ActivityItem card view tick/>
            </For>
        </ul>
    }
}
