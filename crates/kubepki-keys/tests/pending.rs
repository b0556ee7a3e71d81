//! `files::pending` (issue 21): readers hide a journal that is armed and whose
//! temporary files are gone, as the leftover of a completed batch whose unflushed journal
//! removal a crash undid. The test is per folder, while completion is per batch.

use std::fs;

use kubepki_keys::files::pending;

type R = Result<(), Box<dyn std::error::Error>>;

/// A batch spanning two folders, interrupted after its moves in `a`
/// but before those in `b` (the moves are flushed only after all of them, so any subset can
/// survive a crash). `a`'s journal is armed and its temporary file gone, so `pending(a)` says
/// nothing is pending there, while `b` still waits for the same batch: a reader of `a` alone
/// (a folder a kubeconfig names outside the tree's four folders is read but never checked)
/// sees half a batch as settled. Before issue 21 the journal of `a` was reported.
#[test]
fn a_folder_of_an_unfinished_multi_folder_batch_is_pending() -> R {
    let root = std::env::temp_dir().join(format!("kubepki-pending-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir(&root)?;
    let (a, b) = (root.join("a"), root.join("b"));
    fs::create_dir(&a)?;
    fs::create_dir(&b)?;
    let batch = "4000001-0a0b";
    let journal = format!(".kubepki-journal-{batch}");
    let temp = |n: &str| format!(".{n}.kubepki-{batch}.tmp");
    // a: moved (the temporary file is gone, a.crt is the new file).
    fs::write(a.join("a.crt"), b"new")?;
    fs::write(
        a.join(&journal),
        format!("folders 2\nR\t{}\ta.crt\nend\n", temp("a.crt")),
    )?;
    // b: not moved yet.
    fs::write(b.join("b.crt"), b"old")?;
    fs::write(b.join(temp("b.crt")), b"new")?;
    fs::write(
        b.join(&journal),
        format!("folders 2\nR\t{}\tb.crt\nend\n", temp("b.crt")),
    )?;
    assert_eq!(pending(&b)?, vec![b.join(&journal)]);
    assert_eq!(
        pending(&a)?,
        vec![a.join(&journal)],
        "the batch is unfinished (b has not moved), yet a's journal is not pending"
    );
    fs::remove_dir_all(&root)?;
    Ok(())
}
