//! Scanner mode (staff): choose an event, then check members in from a hardware scanner (it types
//! the code and Enter), an image file, or the camera. Every check runs offline in the shell; this
//! screen shows the answer, the check-in log and the trust list's age.

use base64::Engine;
use leptos::prelude::*;
use leptos::task::spawn_local;
use unionpass_core::i18n::{fill, line_start, pending_what, whole_parts, Lang, Msg};
use unionpass_core::ipc::{GetScannerView, LetIn, ScanFrame, ScanImage, ScanText, SetTrustMaxAge};
use unionpass_core::view::{ScanOutcome, ScannerView};
use unionpass_core::ErrorCode;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::ctx::{ctx, Ctx};
use crate::fmt::{activity_time, day_time, now, when, when_in_sentence};
use crate::ipc;

/// What a scan sends to the shell.
enum Req {
    Text(String),
    Image(String),
}

/// An answer the shell could not give (`code`), shown as a failed scan.
fn failed(code: ErrorCode) -> ScanOutcome {
    ScanOutcome::refused(code, now())
}

const FRAME_W: u32 = 640;
const FRAME_H: u32 = 480;

fn load(view: RwSignal<Option<ScannerView>>, event_id: Option<i64>) {
    spawn_local(async move {
        if let Ok(v) = ipc::call(&GetScannerView { event_id }).await {
            view.set(Some(v));
        }
    });
}

/// The words for a scan's answer.
fn outcome_text(c: Ctx, o: &ScanOutcome) -> String {
    let lang = c.lang.get();
    if o.ok {
        return format!(
            "{} {}",
            Msg::MemberNo.text(lang),
            o.member_no.clone().unwrap_or_default()
        );
    }
    let code = o.code.unwrap_or(ErrorCode::Internal);
    let text = match code {
        ErrorCode::AlreadyCheckedIn => fill(
            code.message().text(lang),
            &[
                (
                    "time",
                    &o.earlier_at
                        .map(|t| when_in_sentence(t, lang))
                        .unwrap_or_default(),
                ),
                (
                    "device",
                    &match &o.earlier_scanner {
                        Some(id) => scanned_by(lang, o.earlier_staff.as_deref(), id),
                        None => Msg::ScannerThis.text(lang).to_string(),
                    },
                ),
            ],
        ),
        other => door_reason(other)
            .unwrap_or(other.message())
            .text(lang)
            .to_string(),
    };
    // the number with its label, as on a pass ("会员号 M10003")
    match &o.member_no {
        Some(no) => format!("{} {no} · {text}", Msg::MemberNo.text(lang)),
        None => text,
    }
}

/// A refusal by the door's sign-up list in a few words: the verdict above it already says the
/// member may not enter, and what staff can do comes under the let-in button.
fn door_reason(code: ErrorCode) -> Option<Msg> {
    match code {
        ErrorCode::NotSignedUp => Some(Msg::DoorNotSignedUp),
        ErrorCode::StillWaitlisted => Some(Msg::DoorStillWaitlisted),
        _ => None,
    }
}

/// Who scanned a check-in made on another scanner: the staff member the server named, else the
/// scanner's short id (a check-in the server kept before it named staff).
fn scanned_by(lang: Lang, staff: Option<&str>, scanner_short: &str) -> String {
    match staff {
        Some(name) => name.to_string(),
        None => fill(Msg::ScannerNamed.text(lang), &[("id", scanner_short)]),
    }
}

fn age_text(c: Ctx, minutes: i64) -> String {
    let lang = c.lang.get();
    let (msg, n) = if minutes >= 48 * 60 {
        (Msg::Days, minutes / (24 * 60))
    } else if minutes >= 60 {
        (Msg::Hours, minutes / 60)
    } else {
        (Msg::Minutes, minutes.max(0))
    };
    fill(msg.text(lang), &[("n", &n.to_string())])
}

/// RGBA pixels to one grey byte each (ITU-R BT.601 weights).
fn luma_of(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as u8)
        .collect()
}

#[component]
pub fn ScannerTab() -> impl IntoView {
    let c = ctx();
    let view = RwSignal::new(None::<ScannerView>);
    let result = RwSignal::new(None::<ScanOutcome>);
    let busy = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    load(view, None);
    // a sync (from the button or in the background) may bring events, check-ins, conflicts
    Effect::new(move |_| {
        c.snap.track();
        let id = view.with_untracked(|v| v.as_ref().and_then(|v| v.event.as_ref().map(|e| e.id)));
        load(view, id);
    });

    let event_id = move || view.with(|v| v.as_ref().and_then(|v| v.event.as_ref().map(|e| e.id)));
    // each answer comes into view whole, wherever the page was scrolled (on a phone the tab bar
    // would otherwise cover its last lines)
    Effect::new(move |_| {
        if result.with(Option::is_some) {
            request_animation_frame(|| {
                if let Some(el) = document().get_element_by_id("scan-result") {
                    let opts = web_sys::ScrollIntoViewOptions::new();
                    opts.set_block(web_sys::ScrollLogicalPosition::Nearest);
                    el.scroll_into_view_with_scroll_into_view_options(&opts);
                }
            });
        }
    });
    let show = move |o: ScanOutcome| {
        result.set(Some(o));
        let id = event_id();
        load(view, id);
    };
    let scan = move |req: Req| {
        let Some(event_id) = event_id() else { return };
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let answer = match req {
                Req::Text(text) => ipc::call(&ScanText { event_id, text }).await,
                Req::Image(data) => ipc::call(&ScanImage { event_id, data }).await,
            };
            match answer {
                Ok(o) => show(o),
                Err(code) => result.set(Some(failed(code))),
            }
            busy.set(false);
        });
    };
    // let in by hand the member of the refusal on screen: its own request, not held back by a
    // scan in flight (a camera frame), and one at a time
    let letting_in = RwSignal::new(false);
    let let_in = move |text: String, scanned_at: chrono::DateTime<chrono::Utc>| {
        let Some(event_id) = event_id() else { return };
        if letting_in.get_untracked() {
            return;
        }
        letting_in.set(true);
        spawn_local(async move {
            let req = LetIn {
                event_id,
                text,
                scanned_at,
            };
            match ipc::call(&req).await {
                Ok(o) => show(o),
                Err(code) => result.set(Some(failed(code))),
            }
            letting_in.set(false);
        });
    };

    // a hardware scanner types into whatever has focus: keep it on the input
    let input_ref = NodeRef::<leptos::html::Input>::new();
    // the scan gun types into the input, so it keeps the focus after each scan; not on a touch
    // screen, where focusing it opens the on-screen keyboard over the answer (staff tap it there
    // when a gun is paired)
    let touch = window()
        .match_media("(pointer: coarse)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches());
    let refocus = move || {
        if touch {
            return;
        }
        if let Some(i) = input_ref.get_untracked() {
            // where the page is: on a narrow window the input is under the answer, which the
            // page scrolls to
            let opts = web_sys::FocusOptions::new();
            opts.set_prevent_scroll(true);
            let _ = i.focus_with_options(&opts);
        }
    };
    Effect::new(move |_| {
        if input_ref.get().is_some() {
            refocus();
        }
    });
    let on_typed = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        refocus();
        let text = typed.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        typed.set(String::new());
        scan(Req::Text(text));
    };

    let on_file = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        input.set_value(""); // the same file can be chosen again
        spawn_local(async move {
            let Ok(buf) = JsFuture::from(file.array_buffer()).await else {
                return;
            };
            let data = base64::engine::general_purpose::STANDARD
                .encode(js_sys::Uint8Array::new(&buf).to_vec());
            scan(Req::Image(data));
        });
    };

    // camera: frames are grabbed into a canvas, reduced to grey and decoded in the shell
    let video_ref = NodeRef::<leptos::html::Video>::new();
    let camera_on = RwSignal::new(false);
    let camera_error = RwSignal::new(false);
    let stream = StoredValue::new_local(None::<web_sys::MediaStream>);
    let ticker = StoredValue::new(None::<IntervalHandle>);
    let stop_camera = move || {
        if let Some(h) = ticker.get_value() {
            h.clear();
        }
        ticker.set_value(None);
        if let Some(s) = stream.get_value() {
            for t in s.get_tracks().iter() {
                if let Ok(t) = t.dyn_into::<web_sys::MediaStreamTrack>() {
                    t.stop();
                }
            }
        }
        stream.set_value(None);
        camera_on.set(false);
    };
    on_cleanup(stop_camera);
    let grab_frame = move || {
        let (Some(video), Some(id)) = (video_ref.get_untracked(), event_id()) else {
            return;
        };
        if busy.get_untracked() || video.video_width() == 0 {
            return;
        }
        let Ok(canvas) = document()
            .create_element("canvas")
            .map(|e| e.unchecked_into::<web_sys::HtmlCanvasElement>())
        else {
            return;
        };
        canvas.set_width(FRAME_W);
        canvas.set_height(FRAME_H);
        let Some(ctx2d) = canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        let video_el: &web_sys::HtmlVideoElement = &video;
        if ctx2d
            .draw_image_with_html_video_element_and_dw_and_dh(
                video_el,
                0.0,
                0.0,
                FRAME_W as f64,
                FRAME_H as f64,
            )
            .is_err()
        {
            return;
        }
        let Ok(img) = ctx2d.get_image_data(0.0, 0.0, FRAME_W as f64, FRAME_H as f64) else {
            return;
        };
        let luma = luma_of(&img.data().0);
        busy.set(true);
        spawn_local(async move {
            let req = ScanFrame {
                event_id: id,
                width: FRAME_W as usize,
                height: FRAME_H as usize,
            };
            if let Ok(Some(o)) = ipc::call_raw(&req, &luma).await {
                // the member the list refused, still in view while staff look at their phone:
                // the answer on screen (and its let-in button) stays as it is
                let again = result.with_untracked(|r| {
                    r.as_ref().is_some_and(|r| {
                        r.by_hand_code.is_some() && r.code == o.code && r.member_no == o.member_no
                    })
                });
                if !again {
                    show(o);
                    // leave the answer on screen before the next member steps up
                    gloo_pause(1500).await;
                }
            }
            busy.set(false);
        });
    };
    let start_camera = move |_| {
        camera_error.set(false);
        spawn_local(async move {
            let media = window().navigator().media_devices().ok();
            let constraints = web_sys::MediaStreamConstraints::new();
            constraints.set_video(&wasm_bindgen::JsValue::TRUE);
            let promise = media.and_then(|m| m.get_user_media_with_constraints(&constraints).ok());
            let Some(promise) = promise else {
                camera_error.set(true);
                return;
            };
            let Ok(s) = JsFuture::from(promise)
                .await
                .and_then(|s| s.dyn_into::<web_sys::MediaStream>())
            else {
                camera_error.set(true);
                return;
            };
            if let Some(video) = video_ref.get_untracked() {
                video.set_src_object(Some(&s));
                // awaited so that a play cut short (the member left the screen) is not an
                // uncaught rejection, which boot.js would log as an error
                if let Ok(playing) = video.play() {
                    spawn_local(async move {
                        let _ = JsFuture::from(playing).await;
                    });
                }
            }
            stream.set_value(Some(s));
            camera_on.set(true);
            ticker.set_value(
                set_interval_with_handle(grab_frame, std::time::Duration::from_millis(400)).ok(),
            );
        });
    };

    // how old the verification data is, in words: `just` under a minute, `aged` with the age
    // after; `None` before the first sync. The door list comes in the same sync, so its age is
    // the same.
    let synced_age = move |just: Msg, aged: Msg| {
        view.with(|v| {
            let minutes = (now() - v.as_ref()?.trust_synced_at?).num_minutes();
            Some(if minutes < 1 {
                c.t(just).to_string()
            } else {
                fill(c.t(aged), &[("age", &age_text(c, minutes))])
            })
        })
    };
    let trust_line = move || {
        synced_age(Msg::TrustJustNow, Msg::TrustAge)
            .unwrap_or_else(|| c.t(Msg::TrustNever).to_string())
    };
    let list_age = move || synced_age(Msg::DoorListJustNow, Msg::DoorListAge);
    let stale = move || view.with(|v| v.as_ref().is_some_and(|v| v.trust_stale));
    let max_age = move || view.with(|v| v.as_ref().map(|v| v.max_age_days).unwrap_or(7));
    let events = move || view.with(|v| v.as_ref().map(|v| v.events.clone()).unwrap_or_default());
    // people through the door (members and their companions) against the places
    let count = move || {
        view.with(|v| {
            v.as_ref()
                .and_then(|v| {
                    v.event.as_ref().map(|e| {
                        (
                            v.checked_in + v.checked_in_companions,
                            v.checked_in_companions,
                            e.capacity,
                            v.checked_in_by_hand,
                        )
                    })
                })
                .unwrap_or((0, 0, 0, 0))
        })
    };
    let over = move || {
        let (n, _, cap, _) = count();
        if cap > 0 {
            n - cap
        } else {
            0
        }
    };
    let is_over = move || over() > 0;
    // "已入场 3 人 · 名额 3": on its line, and in the full door's warning
    let count_line = move || {
        let (n, _, cap, _) = count();
        fill(
            c.t(Msg::CheckedInCount),
            &[("n", &n.to_string()), ("cap", &cap.to_string())],
        )
    };
    // the door already full: letting one more in by hand puts it over the places
    let full = move || {
        let (n, _, cap, _) = count();
        cap > 0 && n >= cap
    };
    let count_detail = move || {
        let (_, k, _, h) = count();
        let mut parts = Vec::new();
        // more people in than places (staff let someone in by hand): said first, in red
        if over() > 0 {
            parts.push(fill(c.t(Msg::CheckedInOver), &[("n", &over().to_string())]));
        }
        if k > 0 {
            parts.push(fill(
                c.t(Msg::CheckedInCompanions),
                &[("n", &k.to_string())],
            ));
        }
        if h > 0 {
            parts.push(fill(c.t(Msg::CheckedInByHand), &[("n", &h.to_string())]));
        }
        // a phone's line breaks between the parts, never inside one ("手动 / 放行")
        whole_parts(&parts)
    };
    let chosen_where = move || {
        let lang = c.lang.get();
        view.with(|v| {
            v.as_ref()
                .and_then(|v| v.event.as_ref())
                .map(|e| {
                    format!(
                        "{} · {}",
                        activity_time(e.starts_at, e.ends_at, lang),
                        e.place_in(lang)
                    )
                })
                .unwrap_or_default()
        })
    };
    let ended_at = move || {
        view.with(|v| {
            v.as_ref()
                .and_then(|v| v.event.as_ref())
                .map(|e| e.ends_at)
                .filter(|end| *end <= now())
        })
    };
    let checkins =
        move || view.with(|v| v.as_ref().map(|v| v.checkins.clone()).unwrap_or_default());
    let conflicts =
        move || view.with(|v| v.as_ref().map(|v| v.conflicts.clone()).unwrap_or_default());
    let made_here = move || {
        view.with(|v| {
            v.as_ref()
                .map(|v| (v.made_here, v.made_here_waiting))
                .unwrap_or_default()
        })
    };

    view! {
        <section class="scanner">
            <h1 class="part-title">{move || c.t(Msg::ScannerTitle)}</h1>
            <Show when=stale>
                <p id="trust-stale" class="notice warn" role="alert">
                    {move || fill(c.t(Msg::TrustStale), &[("days", &max_age().to_string())])}
                </p>
            </Show>
            <Show when=move || !events().is_empty()
                fallback=move || view! { <p id="no-events" class="notice">{move || c.t(Msg::NoEvents)}</p> }>
                <div class="card">
                    <label for="scanner-event" class="phone-hidden">{move || c.t(Msg::PickEvent)}</label>
                    <select id="scanner-event" on:change=move |ev| {
                        if let Ok(id) = event_target_value(&ev).parse::<i64>() {
                            result.set(None);
                            load(view, Some(id));
                        }
                        // back to the scan input, where a scan gun types
                        refocus();
                    }>
                        {move || events().into_iter().map(|e| {
                            let id = e.id;
                            view! {
                                <option value=id.to_string() selected=move || event_id() == Some(id)>
                                    {format!("{} · {} · {}", e.title_in(c.lang.get()), line_start(day_time(e.starts_at, c.lang.get())), e.place_in(c.lang.get()))}
                                </option>
                            }
                        }).collect_view()}
                    </select>
                    // when and where, whole: a phone's picker cuts its line short
                    <p id="scanner-event-where" class="muted small">{move || chosen_where()}</p>
                    // an event over (chosen earlier, or the last there is): said, so staff do not
                    // check the crowd in to yesterday's
                    <Show when=move || ended_at().is_some()>
                        <p id="scanner-event-ended" class="notice warn" role="alert">
                            {move || fill(c.t(Msg::DoorEventEnded), &[("time", &ended_at().map(|t| day_time(t, c.lang.get())).unwrap_or_default())])}
                        </p>
                    </Show>
                    // the count on its own line, what it includes under it (on a phone the two
                    // on one line broke inside "含家属 2 人")
                    <p id="checkin-count" class="count" class:over=is_over>
                        {count_line}
                    </p>
                    <Show when=move || !count_detail().is_empty()>
                        <p id="checkin-count-detail" class="muted small">{move || count_detail()}</p>
                    </Show>
                </div>
                // on a phone: the camera first, then the answer, the camera's picture, and the
                // input a paired scan gun types into
                <div class="card door-scan">
                    <form on:submit=on_typed>
                        // on a phone the label is for screen readers and the box says it instead,
                        // so that the card fits above the tab bar with an answer in it
                        <label for="scan-input" class="phone-hidden">{move || c.t(Msg::ScanInputLabel)}</label>
                        <input id="scan-input" node_ref=input_ref autocomplete="off" autocapitalize="off" spellcheck="false"
                            placeholder=move || c.t(Msg::ScanInputLabel)
                            prop:value=move || typed.get()
                            on:input=move |ev| typed.set(event_target_value(&ev))/>
                        <p id="scan-hint" class="muted small" class:answered=move || result.with(Option::is_some)>{move || c.t(Msg::ScanInputHint)}</p>
                    </form>
                    // right under the input, where the eyes are after a scan with the gun (on a
                    // phone, under the camera's button, above its picture and the input)
                    <div id="scan-result" role="status" aria-live="assertive"
                        class=move || match result.get() {
                            // in, but on staff's word: amber until the server checks it
                            Some(o) if o.ok && o.by_hand => "result repeat",
                            Some(o) if o.ok => "result ok",
                            // a repeat is not a failure: the member is in
                            Some(o) if o.code == Some(ErrorCode::AlreadyCheckedIn) => "result repeat",
                            Some(_) => "result fail",
                            None => "result",
                        }>
                        {move || result.get().map(|o| view! {
                            <strong>{if o.ok && o.by_hand {
                                c.t(Msg::LetInTitle)
                            } else if o.ok {
                                c.t(Msg::CheckedIn)
                            } else if o.code == Some(ErrorCode::AlreadyCheckedIn) {
                                c.t(Msg::ScanRepeat)
                            } else {
                                c.t(Msg::ScanFailed)
                            }}</strong>
                            // who should be standing there: large, to match the person
                            {(o.name.is_some() || o.union_name.is_some()).then(|| view! {
                                <span class="scan-who">
                                    <span id="scan-result-name" class="scan-name">{o.name.clone().unwrap_or_default()}</span>
                                    <span id="scan-result-union" class="scan-union">{o.union_name.clone().unwrap_or_default()}</span>
                                    {o.companions.map(|n| view! {
                                        <span id="scan-result-companions" class="scan-companions">
                                            {fill(c.t(Msg::ScanCompanions), &[("n", &n.to_string())])}
                                        </span>
                                    })}
                                </span>
                            })}
                            <span id="scan-result-text">{outcome_text(c, &o)}</span>
                            // what that note says to tap, for this member's code
                            {o.by_hand_code.clone().map(|text| {
                                let at = o.at;
                                view! {
                                    // said before the tap, not only by the red count after it,
                                    // and read before the button is reached
                                    <Show when=full>
                                        <span id="scan-let-in-full" class="small warn-text">
                                            {move || fill(c.t(Msg::LetInFull), &[("count", &count_line())])}
                                        </span>
                                    </Show>
                                    <button id="scan-let-in" type="button" class="secondary"
                                        prop:disabled=move || letting_in.get()
                                        on:click=move |_| { let_in(text.clone(), at); refocus(); }>
                                        {move || c.t(Msg::LetIn)}
                                    </button>
                                }
                            })}
                            // refused by the door list: how old that list is, and when to
                            // tap the button above (the member's phone shows a place)
                            {o.code.and_then(door_reason)
                                .map(|_| view! { <span id="scan-result-list-age" class="small">{list_age}</span> })}
                            {o.by_hand.then(|| view! { <span id="scan-result-by-hand" class="small">{move || c.t(Msg::LetInDone)}</span> })}
                            <span id="scan-result-code" class="visually-hidden">{o.code.map(|c| c.as_str()).unwrap_or("ok")}</span>
                        })}
                    </div>
                    <div class="row">
                        <label class="button" for="scan-file">{move || c.t(Msg::ScanImage)}</label>
                        <input id="scan-file" class="visually-hidden" type="file" accept="image/*" on:change=on_file/>
                        <Show when=move || camera_on.get()
                            fallback=move || view! {
                                <button id="scan-camera" type="button" on:click=start_camera>{move || c.t(Msg::ScanCamera)}</button>
                            }>
                            <button id="scan-camera-stop" type="button" on:click=move |_| stop_camera()>{move || c.t(Msg::StopCamera)}</button>
                        </Show>
                    </div>
                    <video node_ref=video_ref class="camera" class:hidden=move || !camera_on.get()
                        autoplay=true playsinline=true muted=true></video>
                    <Show when=move || camera_error.get()>
                        <p class="notice warn" role="alert">{move || c.t(Msg::CameraUnavailable)}</p>
                    </Show>
                </div>
                <Show when=move || !conflicts().is_empty()>
                    <div class="card warn-card">
                        <h2>{move || c.t(Msg::ConflictsTitle)}</h2>
                        <ul id="conflicts" class="list">
                            {move || conflicts().into_iter().map(|x| view! {
                                <li>{fill(c.t(Msg::ConflictLine), &[
                                    ("member", &x.member_no), ("first", &when_in_sentence(x.first_at, c.lang.get())),
                                    ("a", &scanned_by(c.lang.get(), x.first_staff.as_deref(), &x.first_scanner)),
                                    ("second", &when_in_sentence(x.second_at, c.lang.get())),
                                    ("b", &scanned_by(c.lang.get(), x.second_staff.as_deref(), &x.second_scanner)),
                                ])}</li>
                            }).collect_view()}
                        </ul>
                    </div>
                </Show>
                <div class="card">
                    <h2>{move || c.t(Msg::CheckInLog)}</h2>
                    // whether this device's part of the door is with the server yet (the sync
                    // line counts every change of every kind; the log shows the latest rows)
                    <Show when={move || made_here().0 > 0}>
                        <p id="checkin-upload" class="small" class:warn-text={move || made_here().1 > 0}>
                            {move || {
                                let (all, waiting) = made_here();
                                if waiting > 0 {
                                    fill(c.t(Msg::MadeHereWaiting), &[("n", &waiting.to_string())])
                                } else {
                                    fill(c.t(Msg::MadeHereUploaded), &[("n", &all.to_string())])
                                }
                            }}
                        </p>
                        // the sync line's count holds more than this door's check-ins: said, so
                        // the two counts add up
                        {move || {
                            let others = c.snap.with(|s| {
                                s.as_ref()
                                    .map(|s| s.sync.pending_besides_check_ins(made_here().1))
                                    .unwrap_or_default()
                            });
                            let n: i64 = others.iter().map(|k| k.n).sum();
                            (n > 0).then(|| view! {
                                <p id="checkin-upload-others" class="small muted">
                                    {fill(c.t(Msg::OtherChangesWaiting), &[
                                        ("n", &n.to_string()),
                                        ("what", &pending_what(&others, c.lang.get())),
                                    ])}
                                </p>
                            })
                        }}
                    </Show>
                    <Show when=move || checkins().is_empty()>
                        <p id="checkin-log-empty" class="muted small">{move || c.t(Msg::NoCheckIns)}</p>
                    </Show>
                    <ul id="checkin-log" class="list">
                        {move || checkins().into_iter().map(|r| view! {
                            <li class="checkin">
                                <span class="checkin-who"><strong>{r.name.clone().unwrap_or_default()}</strong>" "<span class="mono">{r.member_no.clone()}</span></span>
                                <span class="muted nowrap checkin-when">{when(r.scanned_at, c.lang.get())}</span>
                                <span class="muted small checkin-device">{if r.ours {
                                    c.t(Msg::ScannerThis).to_string()
                                } else if let Some(name) = r.staff.as_deref() {
                                    // a name alone under the member's read as a companion's
                                    fill(c.t(Msg::ScannedByStaff), &[("name", name)])
                                } else {
                                    scanned_by(c.lang.get(), None, &r.scanner_short)
                                }}</span>
                                // the marks kept together: on a phone they wrap as one, not one alone
                                <span class="checkin-marks">
                                {r.by_hand.then(|| view! { <span class="badge checkin-by-hand">{move || c.t(Msg::ByHand)}</span> })}
                                {match r.refused {
                                    Some(code) => view! {
                                        <span class="badge offline checkin-refused">
                                            {fill(c.t(Msg::CheckinRefused), &[("reason", c.t(code.message()))])}
                                        </span>
                                    }.into_any(),
                                    None => view! {
                                        <span class=if r.uploaded { "badge" } else { "badge offline" }>
                                            {if r.uploaded { c.t(Msg::Uploaded) } else { c.t(Msg::NotUploaded) }}
                                        </span>
                                    }.into_any(),
                                }}
                                </span>
                            </li>
                        }).collect_view()}
                    </ul>
                </div>
            </Show>
            <div class="card">
                <h2>{move || c.t(Msg::ScannerSettings)}</h2>
                <p id="trust-age" class="muted small">{trust_line}</p>
                <label for="trust-max-age">{move || c.t(Msg::TrustMaxAge)}</label>
                <select id="trust-max-age" on:change=move |ev| {
                    if let Ok(days) = event_target_value(&ev).parse::<i64>() {
                        spawn_local(async move {
                            if let Ok(v) = ipc::call(&SetTrustMaxAge { days }).await {
                                view.set(Some(v));
                            }
                        });
                    }
                }>
                    {[1i64, 3, 7, 14, 30].into_iter().map(|d| view! {
                        <option value=d.to_string() selected=move || max_age() == d>
                            {move || fill(c.t(Msg::Days), &[("n", &d.to_string())])}
                        </option>
                    }).collect_view()}
                </select>
            </div>
        </section>
    }
}

/// Wait `ms` milliseconds (a resolved-later promise on the page's timer).
async fn gloo_pause(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
