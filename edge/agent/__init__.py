"""The locker agent that runs on the Raspberry Pi."""
