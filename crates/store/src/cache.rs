//! Delta bases recently made, shared by every pack of the process: the objects of a delta chain are often read
//! one after another (the trees of consecutive commits), and each would otherwise inflate its whole chain again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The most the cache holds, in bytes of object data (libgit2's own delta-base cache holds up to 16 MiB a pack):
/// enough for the trees a write walks down (an environment's `applications/` of 10,000 entries is 400 KiB), which
/// libgit2's object cache above this one keeps too.
const BUDGET: usize = 8 << 20;
/// Objects larger than this are not kept.
const LARGEST: usize = 1 << 20;

/// An object kept: its kind and data.
type Kept = (u8, Arc<[u8]>);

#[derive(Default)]
struct Cache {
    /// (pack key, offset) -> the object there.
    objects: HashMap<(u64, u64), Kept>,
    /// Keys, oldest first: the oldest go first once the budget is spent.
    order: VecDeque<(u64, u64)>,
    bytes: usize,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The object at `offset` of pack `pack`, if it is kept.
pub fn get(pack: u64, offset: u64) -> Option<Kept> {
    let guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref()?.objects.get(&(pack, offset)).cloned()
}

/// Keeps a copy of the object at `offset` of pack `pack`, dropping the oldest ones beyond the budget.
pub fn put(pack: u64, offset: u64, kind: u8, data: &[u8]) {
    if data.len() > LARGEST {
        return;
    }
    // Copied before the lock is taken: readers on other threads wait for no copy of a 400 KiB tree.
    let kept: Arc<[u8]> = Arc::from(data);
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(Cache::default);
    if cache.objects.contains_key(&(pack, offset)) {
        return;
    }
    cache.objects.insert((pack, offset), (kind, kept));
    cache.order.push_back((pack, offset));
    cache.bytes += data.len();
    while cache.bytes > BUDGET {
        let Some(old) = cache.order.pop_front() else { break };
        if let Some((_, d)) = cache.objects.remove(&old) {
            cache.bytes -= d.len();
        }
    }
}

/// Drops every object of the packs `packs` (they were removed from disk), in one pass over the cache.
pub fn forget(packs: &std::collections::HashSet<u64>) {
    if packs.is_empty() {
        return;
    }
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cache) = guard.as_mut() {
        let before = cache.objects.len();
        cache.objects.retain(|k, (_, d)| {
            let keep = !packs.contains(&k.0);
            if !keep {
                cache.bytes -= d.len();
            }
            keep
        });
        if cache.objects.len() != before {
            cache.order.retain(|k| !packs.contains(&k.0));
        }
    }
}
