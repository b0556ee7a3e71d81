use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::progress::{Event, Observer};
use crate::{Error, KeyAlgorithm, PrivateKey};

/// Generates one key per entry of `algs`, using every available core.
///
/// Worker threads take the next index from a shared counter, so a slow RSA-4096 key does not
/// hold back the others. The result keeps the order of `algs`. Under
/// [`crate::progress::observe`] it reports the batch and each key as it is generated.
pub fn generate_many(algs: &[KeyAlgorithm]) -> Result<Vec<PrivateKey>, Error> {
    let total = algs.len();
    let progress = Observer::current();
    progress.emit(Event::KeysStarted { total });
    let done = AtomicUsize::new(0);
    let generate = |alg: KeyAlgorithm| {
        let key = PrivateKey::generate(alg);
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.emit(Event::KeyGenerated { done: n, total });
        key
    };
    // Elliptic-curve keys take tens of microseconds each: starting threads (and seeding a
    // random generator in each) costs more than it saves, and under load a thread that waits
    // for a core delays the whole batch. (Decided before the core count is read: reading it
    // means reading cgroup files.)
    if algs.iter().all(|a| cost(*a) == 1) {
        return algs.iter().map(|a| generate(*a)).collect();
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(algs.len());
    if workers <= 1 {
        return algs.iter().map(|a| generate(*a)).collect();
    }
    // Start with the expensive keys so that both cores finish at about the same time.
    let mut order: Vec<usize> = (0..algs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(algs[i])));
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<PrivateKey, Error>>>> =
        Mutex::new((0..algs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(n) else { break };
                    let key = generate(algs[i]);
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(key);
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().map_err(|_| Error::Generation)?;
    slots
        .into_iter()
        .map(|k| k.unwrap_or(Err(Error::Generation)))
        .collect()
}

fn cost(alg: KeyAlgorithm) -> u32 {
    match alg {
        KeyAlgorithm::Rsa4096 => 100,
        KeyAlgorithm::Rsa3072 => 30,
        KeyAlgorithm::Rsa2048 => 10,
        _ => 1,
    }
}
