"""A ledger bundle built by hand, for tests of kernels that read the ledger's arrays."""

from __future__ import annotations

import numpy as np

from perpabm.exchange.kernels import accounts


def ledger_of(size, collateral=None, entry=None) -> accounts.LedgerArrays:
    """A ledger bundle holding these sizes (base units), collaterals and entry prices (USD)."""
    bundle = accounts.empty(len(size))
    values = bundle[0]
    values[accounts.SIZE] = np.asarray(size, dtype=float)
    values[accounts.COLLATERAL] = 0.0 if collateral is None else collateral
    values[accounts.ENTRY_PRICE] = 0.0 if entry is None else entry
    return bundle
