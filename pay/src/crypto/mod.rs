//! PIN blocks (ISO 9564 formats 0, 3, 4), MACs (ISO 9797-1 algorithm 3,
//! AES-CMAC, UnionPay POS MAC) and working-key handling.
