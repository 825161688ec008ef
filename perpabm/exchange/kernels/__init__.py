"""All of the exchange's compiled code (numba kernels), and the array layouts they share.

Each kernel module owns one kind of state or one rule:

- :mod:`~perpabm.exchange.kernels.accounts` — the ledger bundle ``(values, flags,
  lists)`` and the only code that writes it: booking a fill, crediting collateral,
  noting changed and deficit accounts, the cached liquidation prices and their scan;
- :mod:`~perpabm.exchange.kernels.book` — the book bundle ``(money, index, meta)``:
  resting orders in price-time priority, every search, insert, walk and apply;
- :mod:`~perpabm.exchange.kernels.market` — the venue's running figures (mark, last
  price, fees) as one array, and its terms (fees, maximum leverage);
- :mod:`~perpabm.exchange.kernels.margin` — the initial-margin rule;
- :mod:`~perpabm.exchange.kernels.matching` — a taker's walk, its fills booked, whole
  market orders and batches of them;
- :mod:`~perpabm.exchange.kernels.quotes` — makers' requotes;
- :mod:`~perpabm.exchange.kernels.exact` and :mod:`~perpabm.exchange.kernels.pairwise`
  — exact (``math.fsum``) and numpy-identical sums;
- :mod:`~perpabm.exchange.kernels.status` — the one status-code enum.

Equity and tiered maintenance margin are not defined here: the kernels call the
plain-arithmetic rules of :mod:`perpabm.mechanics`, as the engine's numpy code does.
The Python classes :class:`~perpabm.exchange.ledger.Ledger` and
:class:`~perpabm.exchange.book.OrderBook` are the readable wrappers over these.
"""
