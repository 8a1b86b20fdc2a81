//! The kinds of failure every library error of the ledger reports through a `kind()` method,
//! so that callers (the CLI's exit status, the API's status codes) decide without reading
//! messages.

/// Which kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller asked for something that cannot be given (an entry or checkpoint that does
    /// not exist, a key for another log, a malformed request). Retrying the same will fail.
    Caller,
    /// The store contradicts itself or its formats: run `evidence-verify`.
    Damaged,
    /// The storage engine or the file system failed; retrying may succeed.
    Engine,
    /// The disk is full: free space, then retry.
    FullDisk,
    /// Another process holds the store.
    Busy,
}
