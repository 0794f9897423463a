use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn s(v: &str) -> Value {
    Value::Str(b(v))
}

fn get_str(db: &mut Db, key: &str, now: u64) -> Option<Bytes> {
    match db.get(key.as_bytes(), now).map(|e| &e.value) {
        Some(Value::Str(v)) => Some(v.clone()),
        Some(other) => panic!("not a string: {other:?}"),
        None => None,
    }
}

#[test]
fn set_get_remove_and_len() {
    let mut db = Db::new();
    assert!(db.is_empty());
    db.set(b("a"), s("1"), false, 0);
    db.set(b("b"), s("2"), false, 0);
    db.set(b("a"), s("3"), false, 0);
    assert_eq!(db.len(), 2);
    assert_eq!(get_str(&mut db, "a", 0), Some(b("3")));
    assert!(db.remove(b"a", 0));
    assert!(!db.remove(b"a", 0));
    assert_eq!(db.len(), 1);
    assert_eq!(get_str(&mut db, "a", 0), None);
}

#[test]
fn keys_are_kept_by_slot() {
    let mut db = Db::new();
    db.set(b("{user1000}.following"), s("x"), false, 0);
    db.set(b("{user1000}.followers"), s("y"), false, 0);
    db.set(b("foo"), s("z"), false, 0);
    assert_eq!(db.count_keys_in_slot(3443), 2);
    assert_eq!(db.count_keys_in_slot(12182), 1);
    let mut keys = db.keys_in_slot(3443, 10);
    keys.sort();
    assert_eq!(
        keys,
        vec![b("{user1000}.followers"), b("{user1000}.following")]
    );
    assert_eq!(db.keys_in_slot(3443, 1).len(), 1);
    assert_eq!(db.slots_with_keys(), vec![3443, 12182]);
    assert_eq!(db.delete_slots(&[3443, 1]), 2);
    assert_eq!(db.len(), 1);
    assert_eq!(db.count_keys_in_slot(3443), 0);
    // Out of range slots are harmless.
    assert_eq!(db.count_keys_in_slot(20000), 0);
    assert_eq!(db.delete_slot(20000), 0);
}

#[test]
fn keyspace_trait_reports_counts() {
    use crate::cluster::Keyspace;
    let mut db = Db::new();
    db.set(b("foo"), s("1"), false, 0);
    let ks: &dyn Keyspace = &db;
    assert_eq!(ks.count_keys_in_slot(12182), 1);
    assert_eq!(ks.keys_in_slot(12182, 5), vec![b("foo")]);
    assert_eq!(ks.key_count(), 1);
}

#[test]
fn lazy_expiry_deletes_and_logs() {
    let mut db = Db::new();
    db.set(b("k"), s("v"), false, 1000);
    assert!(db.set_expire(b"k", 2000, 1000));
    assert_eq!(db.get(b"k", 1999).and_then(|e| e.expire_at()), Some(2000));
    assert!(db.contains(b"k", 1999));
    assert!(!db.contains(b"k", 2000));
    // contains() has no side effects.
    assert_eq!(db.len(), 1);
    assert_eq!(get_str(&mut db, "k", 2000), None);
    assert_eq!(db.len(), 0);
    assert_eq!(db.expires_count(), 0);
    assert_eq!(db.take_expired(), vec![b("k")]);
    assert!(db.take_expired().is_empty());
}

#[test]
fn hide_mode_keeps_expired_keys() {
    let mut db = Db::new();
    db.set_expire_mode(ExpireMode::Hide);
    db.set(b("k"), s("v"), false, 0);
    db.set_expire(b"k", 10, 0);
    assert!(db.get(b"k", 10).is_none());
    assert_eq!(db.len(), 1);
    assert!(db.active_expire(100, 10).is_empty());
    assert_eq!(db.len(), 1);
    assert!(!db.has_expired());
}

#[test]
fn set_drops_ttl_unless_keep_ttl() {
    let mut db = Db::new();
    db.set(b("k"), s("v"), false, 0);
    db.set_expire(b"k", 500, 0);
    db.set(b("k"), s("w"), true, 0);
    assert_eq!(db.get(b"k", 0).and_then(|e| e.expire_at()), Some(500));
    db.set(b("k"), s("x"), false, 0);
    assert_eq!(db.get(b"k", 0).and_then(|e| e.expire_at()), None);
    assert_eq!(db.expires_count(), 0);
    assert_eq!(db.next_expiry(), None);
}

#[test]
fn persist_and_reexpire_keep_index_consistent() {
    let mut db = Db::new();
    db.set(b("k"), s("v"), false, 0);
    assert!(!db.persist(b"k", 0));
    db.set_expire(b"k", 500, 0);
    db.set_expire(b"k", 700, 0);
    assert_eq!(db.expires_count(), 1);
    assert_eq!(db.next_expiry(), Some(700));
    assert!(db.persist(b"k", 0));
    assert_eq!(db.expires_count(), 0);
    assert!(!db.set_expire(b"missing", 5, 0));
}

#[test]
fn active_expire_respects_budget_and_order() {
    let mut db = Db::new();
    for (i, at) in [(1, 300u64), (2, 100), (3, 200), (4, 900)] {
        let k = b(&format!("k{i}"));
        db.set(k.clone(), s("v"), false, 0);
        db.set_expire(&k, at, 0);
    }
    assert_eq!(db.active_expire(250, 1), vec![b("k2")]);
    assert_eq!(db.active_expire(250, 10), vec![b("k3")]);
    assert_eq!(db.active_expire(1000, 10), vec![b("k1"), b("k4")]);
    assert!(db.is_empty());
    assert_eq!(db.expires_count(), 0);
}

#[test]
fn flush_all_clears_everything() {
    let mut db = Db::new();
    db.set(b("a"), s("1"), false, 0);
    db.set(b("b"), s("1"), false, 0);
    db.set_expire(b"b", 50, 0);
    assert_eq!(db.flush_all(0), 2);
    assert!(db.is_empty());
    assert_eq!(db.expires_count(), 0);
    assert_eq!(db.count_keys_in_slot(key_slot(b"a")), 0);
}

#[test]
fn remove_if_empty_only_removes_empty_collections() {
    let mut db = Db::new();
    db.insert_new(b("l"), Value::List(VecDeque::new()));
    db.insert_new(b("s"), Value::Set(Box::new([b("x")].into_iter().collect())));
    db.insert_new(b("e"), s(""));
    db.remove_if_empty(b"l");
    db.remove_if_empty(b"s");
    db.remove_if_empty(b"e");
    assert_eq!(db.len(), 2);
    assert!(db.get(b"l", 0).is_none());
}

#[test]
fn watch_detects_modification_only_of_watched_key() {
    let mut db = Db::new();
    let t = db.watch(b("w"), 0);
    db.set(b("other"), s("1"), false, 0);
    assert!(!db.watch_dirty(&t, 0));
    db.set(b("w"), s("1"), false, 0);
    assert!(db.watch_dirty(&t, 0));
    db.unwatch(&t);
    assert_eq!(db.watched_keys(), 0);
}

#[test]
fn watch_counts_clients() {
    let mut db = Db::new();
    let t1 = db.watch(b("w"), 0);
    let t2 = db.watch(b("w"), 0);
    db.unwatch(&t1);
    assert_eq!(db.watched_keys(), 1);
    db.remove(b"w", 0); // absent: not a modification
    assert!(!db.watch_dirty(&t2, 0));
    db.unwatch(&t2);
    assert_eq!(db.watched_keys(), 0);
}

#[test]
fn watch_sees_expiry_after_watch() {
    let mut db = Db::new();
    db.set(b("w"), s("1"), false, 0);
    db.set_expire(b"w", 100, 0);
    let t = db.watch(b("w"), 50);
    assert!(!db.watch_dirty(&t, 99));
    // Logically expired at EXEC time, even if not deleted yet.
    assert!(db.watch_dirty(&t, 100));
    // And after deletion too.
    db.active_expire(200, 10);
    assert!(db.watch_dirty(&t, 200));
}

#[test]
fn watch_of_already_expired_key_ignores_its_deletion() {
    let mut db = Db::new();
    db.set(b("w"), s("1"), false, 0);
    db.set_expire(b"w", 100, 0);
    let t = db.watch(b("w"), 150);
    assert!(!db.watch_dirty(&t, 150));
    assert!(db.get(b"w", 150).is_none()); // lazy delete
    assert!(!db.watch_dirty(&t, 150));
    // A real write afterwards is a change.
    db.set(b("w"), s("2"), false, 150);
    assert!(db.watch_dirty(&t, 150));
}

#[test]
fn watch_and_flush() {
    let mut db = Db::new();
    let absent = db.watch(b("absent"), 0);
    db.set(b("present"), s("1"), false, 0);
    let present = db.watch(b("present"), 0);
    db.flush_all(0);
    assert!(!db.watch_dirty(&absent, 0));
    assert!(db.watch_dirty(&present, 0));
}

#[test]
fn expired_key_overwrite_is_a_change_for_expired_watchers() {
    let mut db = Db::new();
    db.set(b("w"), s("1"), false, 0);
    db.set_expire(b"w", 10, 0);
    let t = db.watch(b("w"), 20);
    db.set(b("w"), s("2"), false, 20);
    assert!(db.watch_dirty(&t, 20));
}
