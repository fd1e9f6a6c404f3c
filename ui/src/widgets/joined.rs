use leptos::prelude::*;

/// Short parts on one line with a "·" between them that never ends or starts a line (`.joined`
/// in app.css): each later part carries its "·" in a gutter the line's box hides where the part
/// begins a line.
#[component]
pub fn Joined(#[prop(optional, into)] id: Option<String>, parts: Vec<AnyView>) -> impl IntoView {
    let parts = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            view! {
                <span class="joined-part">
                    {(i > 0).then(|| view! { <span class="joined-sep" aria-hidden="true">"·"</span> })}
                    {part}
                </span>
            }
        })
        .collect_view();
    view! {
        <span class="muted small joined" id=id>
            <span class="joined-in">{parts}</span>
        </span>
    }
}
