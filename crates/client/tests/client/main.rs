//! The client's tests, one binary: the check that the generated types are the server's
//! (`generated`).

mod generated;
