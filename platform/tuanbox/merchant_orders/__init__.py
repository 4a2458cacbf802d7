"""The order side of the merchant console: status tabs, lists, bulk actions, exports, queues."""
