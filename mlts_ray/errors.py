"""One exception hierarchy for everything a user can get wrong or a run can detect.

Every error names its *subject* (a dotted config key, a trade id, ``chain@height``, a file) and
says *why*; ``str(err)`` is ``"<subject>: <why>"`` and the CLI prints ``error: <subject>: <why>``.
"""

from __future__ import annotations


class MltsError(Exception):
    """Base of every error mlts_ray raises on purpose."""

    def __init__(self, subject: str, why: str) -> None:
        super().__init__(f"{subject}: {why}")
        self.subject = subject
        self.why = why

    def __reduce__(self):
        # Picklable whatever a subclass's __init__ takes: errors cross process boundaries
        # (a Ray actor's error must reach the driver as itself, naming its subject).
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type, args: tuple, state: dict) -> MltsError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ConfigError(MltsError):
    """A configuration file, key or value is wrong; ``subject`` is the dotted key or the file."""


class EncodingError(MltsError):
    """Bytes that do not decode to the object they claim to be; ``subject`` names the object."""


class LedgerError(MltsError):
    """A ledger object (block, trade, chain) breaks a rule."""


class ChainError(LedgerError):
    """A block cannot join its chain (height, hash link, Merkle root, signature)."""


class SettlementError(LedgerError):
    """A trade cannot settle. ``subject`` is the trade id, ``reason`` a stable short code."""

    def __init__(self, tx_id: str, reason: str, detail: str = "") -> None:
        super().__init__(tx_id, reason + (f" ({detail})" if detail else ""))
        self.tx_id = tx_id
        self.reason = reason


class RunError(MltsError):
    """A run, its directory or its runtime failed; ``subject`` names the run, chain or file."""


class ContentError(RunError):
    """A stored run's content is wrong: what ``mlts verify`` or ``mlts query`` found (the CLI
    exits 1 for these, 2 for usage and input errors)."""
