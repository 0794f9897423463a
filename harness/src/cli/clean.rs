//! `hearsay clean`: removes leftovers (namespaces, links, nft tables, processes) of
//! dead runs.

use crate::env::registry;

pub fn clean(force: bool, unregistered: bool) -> i32 {
    let reports = registry::clean(&registry::registry_dir(), force, unregistered);
    let mut code = 0;
    for r in &reports {
        println!(
            "{}: killed {:?}, netns {:?}, links {:?}, nft {:?}{}",
            r.prefix,
            r.killed,
            r.netns_removed,
            r.links_removed,
            r.nft_removed,
            if r.errors.is_empty() {
                String::new()
            } else {
                format!(", errors {:?}", r.errors)
            }
        );
        if !r.errors.is_empty() {
            code = 2;
        }
    }
    if reports.is_empty() {
        println!("nothing to clean");
    }
    code
}
