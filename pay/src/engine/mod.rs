//! Transaction flows against an acquirer host.
