"""Catalog errors."""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError


class InsufficientStockError(ConflictError):
    code = "INSUFFICIENT_STOCK"
    title = "Not enough stock"


class StockInvariantError(ConflictError):
    """A release or commit found less reserved stock than it expected (a bookkeeping bug)."""

    code = "STOCK_INVARIANT"


class StockLimitError(InvalidInputError):
    """A restock would take a SKU past tuanbox.bounds.MAX_STOCK units on hand."""

    code = "STOCK_LIMIT"


class SkuNotFoundError(NotFoundError):
    code = "SKU_NOT_FOUND"


class DuplicateLotError(ConflictError):
    code = "DUPLICATE_LOT"


class ImageRejectedError(InvalidInputError):
    code = "IMAGE_REJECTED"
