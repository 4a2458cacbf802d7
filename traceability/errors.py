"""Traceability's error hierarchy: every error carries a stable machine-readable ``code``.

::

    TraceError
    ├── EventValidationError        invalid_event (names the offending field; an HTTP 422)
    │   └── IdentifierError         invalid_identifier
    ├── ProofError                  invalid_proof
    ├── ReportError                 invalid_report
    ├── SignerConfigError           signer_not_configured
    ├── WindowConflictError         window_conflict (another worker cut it first)
    └── ChainError                  chain_error
        ├── ChainUnavailableError   chain_unavailable
        ├── ChainMismatchError      chain_mismatch
        ├── ContractMissingError    contract_missing
        ├── AlreadyAnchoredError    already_anchored
        ├── NotAnchorerError        not_anchorer
        ├── TransactionRevertedError transaction_reverted
        └── ConfirmationTimeoutError confirmation_timeout
"""

from __future__ import annotations


class TraceError(Exception):
    """Base of every traceability error."""

    code = "trace_error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EventValidationError(TraceError):
    """An EPCIS event broke a rule; ``field`` is the JSON path of the offending field."""

    code = "invalid_event"
    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


class IdentifierError(EventValidationError):
    """A GS1 identifier (GTIN, GLN, lot, Digital Link, EPC URN) is malformed."""

    code = "invalid_identifier"


class ProofError(TraceError):
    """A Merkle proof is malformed (not merely wrong: wrong proofs just fail to verify)."""

    code = "invalid_proof"
    http_status = 422


class ReportError(TraceError):
    """A trace report cannot be read."""

    code = "invalid_report"
    http_status = 422


class SignerConfigError(TraceError):
    """No usable signing key: neither TRACE_SIGNER_KEY nor a readable keystore."""

    code = "signer_not_configured"


class WindowConflictError(TraceError):
    """Another worker already put some of these events in a window."""

    code = "window_conflict"
    http_status = 409


class ChainError(TraceError):
    """Something went wrong talking to the chain."""

    code = "chain_error"
    http_status = 502


class ChainUnavailableError(ChainError):
    """The RPC endpoint cannot be reached or does not answer."""

    code = "chain_unavailable"
    http_status = 503


class ChainMismatchError(ChainError):
    """The node serves another chain than the one configured or named in a report."""

    code = "chain_mismatch"


class ContractMissingError(ChainError):
    """No contract code at the configured address."""

    code = "contract_missing"


class AlreadyAnchoredError(ChainError):
    """The contract refused the root because it was anchored before."""

    code = "already_anchored"
    http_status = 409


class NotAnchorerError(ChainError):
    """The signer is not on the contract's allow-list."""

    code = "not_anchorer"
    http_status = 403


class TransactionRevertedError(ChainError):
    """A transaction was mined but reverted for another reason."""

    code = "transaction_reverted"


class ConfirmationTimeoutError(ChainError):
    """A transaction did not reach the wanted confirmations before the deadline."""

    code = "confirmation_timeout"
    http_status = 504
