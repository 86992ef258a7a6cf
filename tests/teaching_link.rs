//! Teaching links: the readable URL hash a teacher writes by hand
//! (`#preset=m-sharpness&hide=settings,runs&engine=cpu&view=experiments`), what the page writes
//! back, and the one-line notes that name a bad key or value.

use samlab::config::Backend;
use samlab::lab::Preset;
use samlab::lab::state::{Layout, Link, Panel, View};
use std::collections::BTreeSet;

#[test]
fn a_teaching_link_opens_a_preset_with_panels_hidden_and_a_view() {
    let link = Link::parse("#preset=m-sharpness&hide=settings,runs&engine=cpu&view=experiments").unwrap().unwrap();
    let mut want = Preset::MSharpness.state();
    want.shared.backend = Backend::Cpu;
    assert_eq!(link.state.as_ref(), Some(&want));
    assert_eq!(link.engine, Some(Backend::Cpu));
    assert_eq!(link.layout.hidden, BTreeSet::from([Panel::Runs, Panel::Settings]));
    assert_eq!(link.layout.view, View::Experiments);
    assert!(link.notes.is_empty(), "{:?}", link.notes);
    // What the page writes back is the same readable link (keys in a fixed order).
    assert_eq!(Link::hash(&want, &link.layout), "preset=m-sharpness&engine=cpu&hide=runs,settings&view=experiments");
    let back = Link::parse(&Link::hash(&want, &link.layout)).unwrap().unwrap();
    assert_eq!((back.state, back.layout), (link.state, link.layout));
}

#[test]
fn embed_hides_every_panel_and_layout_parameters_follow_a_whole_state() {
    let link = Link::parse("embed&preset=label-noise").unwrap().unwrap();
    assert_eq!(link.layout.hidden.len(), Panel::ALL.len());
    assert_eq!(Link::hash(link.state.as_ref().unwrap(), &link.layout), "preset=label-noise&embed");
    // A changed lab travels whole, with the layout after it.
    let mut state = Preset::LabelNoise.state();
    state.preset = None;
    state.shared.seed = 9;
    let layout = Layout { hidden: BTreeSet::from([Panel::Settings]), view: View::Lab };
    let hash = Link::hash(&state, &layout);
    assert!(hash.starts_with("v1:") && hash.ends_with("&hide=settings"), "{hash}");
    let back = Link::parse(&hash).unwrap().unwrap();
    assert_eq!(back.state, Some(state.clone()));
    assert_eq!(back.layout, layout);
    // Only the layout: the state is left to the stored session.
    let only = Link::parse("hide=status").unwrap().unwrap();
    assert_eq!(only.state, None);
    assert_eq!(Link::hash(&state, &Layout::default()), state.to_hash());
}

#[test]
fn bad_keys_and_values_of_a_teaching_link_are_named_and_the_rest_applies() {
    let link = Link::parse("preset=m-sharpnes&hide=settings,plots&engine=tpu&view=graphs&colour=red&embed=maybe").unwrap().unwrap();
    let notes = link.notes.join("\n");
    for needle in [
        "preset=m-sharpnes is not a preset",
        "hide=plots is not a panel",
        "engine=tpu is not an engine",
        "view=graphs is not a view",
        "unknown key \"colour\"",
        "embed=maybe",
    ] {
        assert!(notes.contains(needle), "{needle} missing from:\n{notes}");
    }
    assert_eq!(link.notes.len(), 6);
    assert!(link.notes.iter().all(|n| !n.contains('\n')));
    assert_eq!(link.state, None);
    assert_eq!(link.layout.hidden, BTreeSet::from([Panel::Settings]));
    // Nothing this build knows: an error, as for a foreign versioned hash.
    assert!(Link::parse("garbage").unwrap_err().to_string().contains("teaching link"));
    assert!(Link::parse("v0:abc").unwrap_err().to_string().contains("outdated"));
    assert!(Link::parse("v1:!!!&hide=runs").is_err());
    assert!(Link::parse("").unwrap().is_none());
}
