use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;

use bourse_journal::{GroupCommitOptions, GroupCommitter, Journal, TrySubmitError};

#[test]
fn concurrent_producers_share_fsyncs_and_every_reply_names_its_record() {
    const PRODUCERS: u64 = 8;
    const EACH: u64 = 250;
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let committer = GroupCommitter::spawn(journal, GroupCommitOptions::default()).unwrap();

    let handles: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let submitter = committer.submitter();
            thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let payload = format!("producer {producer} command {i}").into_bytes();
                        let seq = submitter.submit_and_wait(payload.clone()).unwrap();
                        (seq, payload)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acknowledged: HashMap<u64, Vec<u8>> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        acknowledged.len() as u64,
        PRODUCERS * EACH,
        "no seq given twice"
    );

    let stats = committer.stats();
    let journal = committer.shutdown();
    assert_eq!(stats.records, PRODUCERS * EACH);
    assert!(
        stats.commits < stats.records,
        "8 waiting producers must share fsyncs: {stats:?}"
    );
    assert_eq!(journal.durable_seq(), PRODUCERS * EACH);
    drop(journal);

    let (journal, _) = Journal::open(dir.path()).unwrap();
    let mut replayed = 0;
    journal
        .replay(0, |seq, payload| {
            assert_eq!(acknowledged[&seq], payload, "record {seq}");
            replayed += 1;
        })
        .unwrap();
    assert_eq!(replayed, PRODUCERS * EACH);
}

#[test]
fn a_full_queue_refuses_without_blocking_and_returns_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let options = GroupCommitOptions {
        queue_capacity: 2,
        max_batch: 1,
    };
    let committer = GroupCommitter::spawn(journal, options).unwrap();
    let submitter = committer.submitter();

    // Hold the writer inside the first reply so that the queue cannot drain.
    let (release, held) = mpsc::channel::<()>();
    let (first_done, first) = mpsc::channel();
    submitter
        .submit(b"first".to_vec(), move |result| {
            first_done.send(result.clone()).unwrap();
            held.recv().unwrap();
        })
        .unwrap();
    assert_eq!(first.recv().unwrap().unwrap(), 1);

    let (done, results) = mpsc::channel();
    for name in ["second", "third"] {
        let done = done.clone();
        submitter
            .try_submit(name.as_bytes().to_vec(), move |r| done.send(r).unwrap())
            .unwrap();
    }
    match submitter.try_submit(b"fourth".to_vec(), |_| panic!("must not be called")) {
        Err(TrySubmitError::Full(payload)) => assert_eq!(payload, b"fourth"),
        other => panic!("expected a full queue, got {other:?}"),
    }

    release.send(()).unwrap();
    let mut seqs: Vec<u64> = (0..2).map(|_| results.recv().unwrap().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, [2, 3]);
    drop(submitter);
    let journal = committer.shutdown();
    let mut payloads = Vec::new();
    journal
        .replay(0, |_, payload| payloads.push(payload.to_vec()))
        .unwrap();
    assert_eq!(payloads, [&b"first"[..], b"second", b"third"]);
}
