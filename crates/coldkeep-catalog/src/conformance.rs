//! The conformance suite every [`KvStore`] implementation must pass.
//!
//! Call [`run_all`] from the implementation's tests with a factory of fresh, empty stores. The
//! in-memory reference runs it too, so the suite itself is checked against the model.

use crate::{Batch, KvStore, Table};

/// Runs every check against stores made by `fresh`.
///
/// # Panics
/// When the implementation breaks the [`KvStore`] contract.
pub fn run_all(fresh: &dyn Fn() -> Box<dyn KvStore>) {
    get_put_delete(&*fresh());
    tables_are_separate(&*fresh());
    scan_is_ordered_and_prefix_bounded(&*fresh());
    batches_apply_in_order(&*fresh());
    empty_keys_and_values(&*fresh());
}

fn put(kv: &dyn KvStore, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = Batch::new();
    batch.put(table, key, value);
    kv.write(batch).expect("write");
}

fn scan(kv: &dyn KvStore, table: Table, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.scan(table, prefix).collect::<Result<_, _>>().expect("scan")
}

fn get_put_delete(kv: &dyn KvStore) {
    assert_eq!(kv.get(Table::Meta, b"k").expect("get"), None);
    put(kv, Table::Meta, b"k", b"v1");
    assert_eq!(kv.get(Table::Meta, b"k").expect("get").as_deref(), Some(&b"v1"[..]));
    put(kv, Table::Meta, b"k", b"v2");
    assert_eq!(kv.get(Table::Meta, b"k").expect("get").as_deref(), Some(&b"v2"[..]));
    let mut batch = Batch::new();
    batch.delete(Table::Meta, b"k");
    kv.write(batch).expect("delete");
    assert_eq!(kv.get(Table::Meta, b"k").expect("get"), None);
}

fn tables_are_separate(kv: &dyn KvStore) {
    for (i, table) in Table::ALL.iter().enumerate() {
        put(kv, *table, b"same", &[i as u8]);
    }
    for (i, table) in Table::ALL.iter().enumerate() {
        assert_eq!(kv.get(*table, b"same").expect("get"), Some(vec![i as u8]), "{table:?}");
        assert_eq!(scan(kv, *table, b"").len(), 1, "{table:?}");
    }
}

fn scan_is_ordered_and_prefix_bounded(kv: &dyn KvStore) {
    let keys: [&[u8]; 7] = [b"b", b"a\xff", b"a", b"ab", b"a\x00", b"\xff\xff", b"c"];
    for k in keys {
        put(kv, Table::Chunks, k, k);
    }
    let all: Vec<Vec<u8>> = scan(kv, Table::Chunks, b"").into_iter().map(|(k, _)| k).collect();
    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    sorted.sort();
    assert_eq!(all, sorted, "full scan must be in byte order");
    let a: Vec<Vec<u8>> = scan(kv, Table::Chunks, b"a").into_iter().map(|(k, _)| k).collect();
    assert_eq!(a, vec![b"a".to_vec(), b"a\x00".to_vec(), b"ab".to_vec(), b"a\xff".to_vec()]);
    assert!(scan(kv, Table::Chunks, b"zz").is_empty());
    let ff: Vec<Vec<u8>> = scan(kv, Table::Chunks, b"\xff").into_iter().map(|(k, _)| k).collect();
    assert_eq!(ff, vec![b"\xff\xff".to_vec()]);
    for (k, v) in scan(kv, Table::Chunks, b"") {
        assert_eq!(k, v, "values follow their keys");
    }
}

fn batches_apply_in_order(kv: &dyn KvStore) {
    let mut batch = Batch::new();
    batch.put(Table::Packs, b"x", b"1");
    batch.delete(Table::Packs, b"x");
    batch.put(Table::Packs, b"y", b"1");
    batch.put(Table::Packs, b"y", b"2");
    batch.put(Table::Snapshots, b"z", b"3");
    kv.write(batch).expect("write");
    assert_eq!(kv.get(Table::Packs, b"x").expect("get"), None);
    assert_eq!(kv.get(Table::Packs, b"y").expect("get"), Some(b"2".to_vec()));
    assert_eq!(kv.get(Table::Snapshots, b"z").expect("get"), Some(b"3".to_vec()));
    kv.write(Batch::new()).expect("an empty batch is fine");
}

fn empty_keys_and_values(kv: &dyn KvStore) {
    put(kv, Table::Meta, b"", b"");
    assert_eq!(kv.get(Table::Meta, b"").expect("get"), Some(Vec::new()));
    let big = vec![0xab; 1 << 20];
    put(kv, Table::Meta, b"big", &big);
    assert_eq!(kv.get(Table::Meta, b"big").expect("get"), Some(big));
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_implementation_conforms() {
        super::run_all(&|| Box::new(crate::MemKv::new()));
    }
}
