"""The locker side of Tuanbox: the shared wire protocol and the Raspberry Pi agent."""
