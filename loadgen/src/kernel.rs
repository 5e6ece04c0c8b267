//! Kernel evidence: TcpExt counters, listener queues via sock_diag, TCP_INFO.
//!
//! SKELETON: being written.
