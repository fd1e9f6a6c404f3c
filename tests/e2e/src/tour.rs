//! Judging a screen as a member meets it: the window really is the size the test asked for, the
//! screen's own content has arrived, nothing runs off the side (the page or any box inside it),
//! no raw error text is shown, and axe-core finds no serious or critical accessibility problem.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::Locator;

use crate::App;

/// axe-core's script, from the npm packages `cargo xtask setup` installs.
fn axe_script() -> Result<String> {
    let path = std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (axe-core; `cargo xtask setup` installs it)",
            path.display()
        )
    })
}

/// Words that only a program would say: a platform or transport error, an unfilled placeholder,
/// a value JavaScript could not show. None of them belongs on a member's screen.
const RAW: &[&str] = &[
    "not allowed",
    "Permissions associated",
    "permission denied",
    "panicked",
    "error sending request",
    "error decoding",
    "ERR_",
    "[object ",
    "undefined",
    "NaN",
    "Msg::",
    "{n}",
    "{name}",
    "sqlite",
    "SQLITE",
    "keyring",
    "reqwest",
    "tauri",
];

/// Set the window to `w`×`h` and check the page inside really is `w` wide.
pub async fn size(app: &App, w: u32, h: u32) -> Result<()> {
    app.c.set_window_size(w, h).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let inner = app.c.execute("return window.innerWidth", vec![]).await?;
        if inner.as_f64() == Some(f64::from(w)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("asked for a {w} px window, the page is {inner} px wide");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything wrong with the screen as it is now, judged with its content (`ready`, a CSS
/// selector for what this screen must show) present. `name` labels the failures.
pub async fn judge(app: &App, name: &str, ready: &str) -> Result<()> {
    app.wait_for(ready, 20)
        .await
        .with_context(|| format!("{name}: its content ({ready}) never showed"))?;
    // let a render triggered by the same update settle (fonts, images, the QR)
    app.c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await?;

    let text = app
        .c
        .execute("return document.body.innerText", vec![])
        .await?;
    let text = text.as_str().unwrap_or_default();
    for raw in RAW {
        ensure!(
            !text.contains(raw),
            "{name}: raw text {raw:?} on screen:\n{text}"
        );
    }
    ensure!(
        app.c.find(Locator::Css(".jserr")).await.is_err(),
        "{name}: a script error is shown"
    );

    // sideways: the page, every box that clips or scrolls, and every visible element's right
    // edge
    let wide = app
        .c
        .execute(
            "const out = [];
             const vw = window.innerWidth;
             if (document.documentElement.scrollWidth > vw) {
               out.push('page ' + document.documentElement.scrollWidth + ' > ' + vw);
             }
             const label = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
               (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
             // text kept for screen readers only: a box taken out of the flow, a pixel wide and
             // clipped to nothing (`.visually-hidden`, or a phone's rule hiding a heading so)
             const clipped = e => {
               for (let a = e; a && a !== document.body; a = a.parentElement) {
                 const s = getComputedStyle(a);
                 if (s.clip === 'rect(0px, 0px, 0px, 0px)' && (s.position === 'absolute' || s.position === 'fixed') &&
                     a.getBoundingClientRect().width <= 1) return true;
               }
               return false;
             };
             for (const e of document.querySelectorAll('body *')) {
               // rows meant to scroll sideways, hidden labels, and one-line texts cut with an
               // ellipsis (the sync line, a native select showing a long choice)
               if (e.closest('.chips.scroll, .visually-hidden, .sync-text, svg, select') || clipped(e)) continue;
               const r = e.getBoundingClientRect();
               if (r.width === 0 || r.height === 0) continue;
               const s = getComputedStyle(e);
               if (s.visibility === 'hidden') continue;
               if (s.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1) {
                 const edge = e.getBoundingClientRect().right;
                 const past = [...e.querySelectorAll('*')]
                   .filter(d => d.getBoundingClientRect().right > edge + 0.5)
                   .slice(-3).map(d => label(d) + ' to ' + Math.round(d.getBoundingClientRect().right));
                 // text running out of its box (e.g. a line that does not wrap)
                 const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
                 for (let t = walk.nextNode(); t && past.length < 6; t = walk.nextNode()) {
                   const range = document.createRange();
                   range.selectNodeContents(t);
                   const right = range.getBoundingClientRect().right;
                   if (right > edge + 0.5) {
                     past.push('text ' + JSON.stringify(t.textContent.slice(0, 40)) + ' in ' +
                               label(t.parentElement) + ' to ' + Math.round(right));
                   }
                 }
                 // still nothing named: which element, taken out, ends the overflow
                 if (past.length === 0) {
                   for (const d of e.querySelectorAll('*')) {
                     const was = d.style.display;
                     d.style.display = 'none';
                     const fits = e.scrollWidth <= e.clientWidth + 1;
                     d.style.display = was;
                     if (fits) past.push('without ' + label(d) + ' it fits');
                   }
                   past.splice(0, Math.max(0, past.length - 3));
                 }
                 out.push(label(e) + ' hides ' + (e.scrollWidth - e.clientWidth) +
                          ' px sideways (past its edge: ' + past.join(', ') + ')');
               }
               if (r.right > vw + 0.5 || r.left < -0.5) {
                 out.push(label(e) + ' runs off the side: ' + Math.round(r.left) + '..' + Math.round(r.right));
               }
             }
             return out.slice(0, 10);",
            vec![],
        )
        .await?;
    ensure!(
        wide.as_array().is_some_and(|a| a.is_empty()),
        "{name}: wider than the window: {wide:#}"
    );

    // a line of parts (`.joined`): a "·" shows between two parts on one line, never where a
    // part begins a line (its gutter, left of the line's box, is hidden)
    let dots = app
        .c
        .execute(
            "const out = [];
             for (const box of document.querySelectorAll('.joined')) {
               const edge = box.getBoundingClientRect().left;
               if (box.getBoundingClientRect().width === 0) continue;
               if (getComputedStyle(box).overflowX === 'visible') out.push((box.id || 'joined') + ': does not hide its gutter');
               for (const sep of box.querySelectorAll('.joined-sep')) {
                 const shown = sep.getBoundingClientRect().right > edge + 0.5;
                 const part = sep.closest('.joined-part');
                 const text = part.textContent.slice(1, 30);
                 const first = part.getBoundingClientRect().left + parseFloat(getComputedStyle(part).paddingLeft) <= edge + 0.5;
                 if (first && shown) out.push((box.id || 'joined') + ': a dot begins a line before ' + JSON.stringify(text));
                 if (!first && !shown) out.push((box.id || 'joined') + ': no dot before ' + JSON.stringify(text));
               }
             }
             return out.slice(0, 6);",
            vec![],
        )
        .await?;
    ensure!(
        dots.as_array().is_some_and(|a| a.is_empty()),
        "{name}: a line's separators: {dots:#}"
    );

    // every group of controls is named for a screen reader, and every chip or choice says
    // whether it is on as its colour does (a radio's aria-checked, a switch's aria-pressed)
    let unsaid = app
        .c
        .execute(
            "const out = [];
             const seen = e => e.getBoundingClientRect().width > 0;
             for (const g of document.querySelectorAll('#content [role=group], #content [role=radiogroup]')) {
               if (!seen(g)) continue;
               const by = (g.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
                 .map(id => (document.getElementById(id) || {}).textContent || '').join('');
               if (!((g.getAttribute('aria-label') || '') + by).trim()) {
                 out.push('a group without a name: ' + (g.id || g.className) + ' (' + g.textContent.slice(0, 30) + ')');
               }
             }
             for (const b of document.querySelectorAll('#content .chip, #content .choice')) {
               if (!seen(b)) continue;
               const said = b.getAttribute('role') === 'radio'
                 ? b.getAttribute('aria-checked') : b.getAttribute('aria-pressed');
               const shown = String(b.classList.contains('active'));
               if (said !== shown) out.push((b.id || b.textContent.slice(0, 20)) + ': shown ' + shown + ', said ' + said);
             }
             return out.slice(0, 8);",
            vec![],
        )
        .await?;
    ensure!(
        unsaid.as_array().is_some_and(|a| a.is_empty()),
        "{name}: controls a screen reader cannot follow: {unsaid:#}"
    );

    // axe-core in the real window
    let loaded = app
        .c
        .execute("return typeof window.axe === 'object'", vec![])
        .await?;
    if loaded != serde_json::json!(true) {
        app.c.execute(&axe_script()?, vec![]).await?;
    }
    let found = app
        .c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' — ' +
                   v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' (' +
                     (n.failureSummary || '').replace(/\\s+/g, ' ') + ')').join('; '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await?;
    ensure!(
        found.as_array().is_some_and(|a| a.is_empty()),
        "{name}: accessibility problems (axe-core):\n{found:#}"
    );
    Ok(())
}

/// Walk the screen with the Tab key: every visible control must take the focus in turn, and
/// show that it has it (an outline or a box shadow).
pub async fn keyboard(app: &App, name: &str) -> Result<()> {
    let controls = app
        .c
        .execute(
            "window.__seen = new Set();
             window.__unmarked = [];
             const ctl = [...document.querySelectorAll(
               'button, a[href], input, select, textarea, summary, [tabindex]:not([tabindex=\"-1\"])')]
               .filter(e => !e.disabled && e.getClientRects().length > 0 &&
                            getComputedStyle(e).visibility !== 'hidden' &&
                            !e.closest('[inert], .visually-hidden, details:not([open]) > :not(summary)'));
             ctl.forEach((e, i) => e.dataset.tourId = String(i));
             document.addEventListener('focusin', ev => {
               const e = ev.target;
               if (!e.dataset || e.dataset.tourId === undefined) return;
               window.__seen.add(e.dataset.tourId);
               const s = getComputedStyle(e);
               const marked = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) ||
                              s.boxShadow !== 'none';
               if (!marked) window.__unmarked.push(e.outerHTML.slice(0, 80));
             });
             if (document.activeElement) document.activeElement.blur();
             return ctl.length;",
            vec![],
        )
        .await?;
    let n = controls.as_u64().unwrap_or(0);
    ensure!(n > 0, "{name}: no control to reach");
    // one Tab press after another, as a keyboard user would (not Element Send Keys, which
    // would put the focus back on its element before each key)
    let mut keys = KeyActions::new("keyboard".into());
    for _ in 0..n + 2 {
        keys = keys
            .then(KeyAction::Down { value: '\u{E004}' })
            .then(KeyAction::Up { value: '\u{E004}' });
    }
    app.c.perform_actions(keys).await?;
    let seen = app
        .c
        .execute(
            "const missed = [...document.querySelectorAll('[data-tour-id]')]
               .filter(e => !window.__seen.has(e.dataset.tourId))
               .map(e => e.outerHTML.slice(0, 80));
             return [missed, window.__unmarked];",
            vec![],
        )
        .await?;
    ensure!(
        seen[0].as_array().is_some_and(|a| a.is_empty()),
        "{name}: the Tab key never reaches {:#}",
        seen[0]
    );
    ensure!(
        seen[1].as_array().is_some_and(|a| a.is_empty()),
        "{name}: focus is not visible on {:#}",
        seen[1]
    );
    Ok(())
}
