"""Receipts in `serve`: Twilio's status callbacks on their own listener, bounces polled from a
Maildir in a thread of their own (a long run does not hold them back), and what they record in
the metrics and, for a final warning before a deletion that did not arrive, in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

from renewd.act.bounces import read_bounces, return_path
from renewd.act.receipts import Tally, record, twilio_credentials
from renewd.config.model import Config
from renewd.core.delivery import Receipt
from renewd.core.errors import RenewdError
from renewd.policy.model import Policy
from renewd.service.callbacks import Callbacks
from renewd.state.ledger import Ledger

log = logging.getLogger("renewd")


class ReceiptMetrics:
    """renewd_deliveries_total{channel,status}, renewd_undelivered_final_warnings_total{channel},
    and what the callback listener and the bounce reader did with what came in."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "renewd_deliveries",
            "Delivery states recorded from receipts (callbacks, bounces)",
            ["channel", "status"],
            registry=registry,
        )
        self.final = Counter(
            "renewd_undelivered_final_warnings",
            "Last warnings before a deletion that did not arrive",
            ["channel"],
            registry=registry,
        )
        self.callbacks = Counter(
            "renewd_twilio_callbacks",
            "Twilio status callbacks by outcome (forbidden: bad or missing signature)",
            ["outcome"],
            registry=registry,
        )
        self.bounces = Counter(
            "renewd_bounces",
            "Files read from the bounce Maildir by what became of them",
            ["outcome"],
            registry=registry,
        )

    def tally(self, tally: Tally, outcomes: Counter) -> None:
        for key, count in tally.outcomes.items():
            outcomes.labels(outcome=key).inc(count)
        for (channel, status), count in tally.deliveries.items():
            self.deliveries.labels(channel=channel, status=status).inc(count)
        for channel, line in tally.final:
            self.final.labels(channel=channel).inc()
            log.warning("%s", line)


class ReceiptService:
    """Started by the daemon beside its loop, stopped with it; `policy` is the one running."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        registry: CollectorRegistry,
        stopping: threading.Event,
        policy: Callable[[], Policy],
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.metrics = ReceiptMetrics(registry)
        self.stopping = stopping
        self.policy = policy
        self.callbacks: Callbacks | None = None
        self.poller: threading.Thread | None = None
        self.listening = ""  # the receipts.listen this process holds: a reload does not probe it
        self._problem = ""

    def start(self) -> None:
        settings = self.config.receipts
        if settings.bounces is not None:
            self.return_path = return_path(self.config)
            self.poller = threading.Thread(target=self._poll, name="renewd-bounces", daemon=True)
            self.poller.start()
        if settings.listen:
            token, account = twilio_credentials(self.config)
            self.callbacks = Callbacks(
                settings.listen,
                self.config.callback_url,
                token,
                account,
                self._apply,
                lambda outcome: self.metrics.callbacks.labels(outcome=outcome).inc(),
                settings.max_body_bytes,
                settings.rate,
            )
            self.callbacks.start()
            self.listening = settings.listen
            log.info(
                "Twilio status callbacks on http://%s%s (signed for %s)",
                self.callbacks.address,
                self.callbacks.path,
                self.callbacks.url,
            )

    def reload(self, config: Config) -> None:
        """A reloaded config's token, callback URL and return path (not the listen address)."""
        self.config = config
        if self.callbacks is not None:
            token, _ = twilio_credentials(config)
            self.callbacks.configure(config.callback_url, token)
        if self.poller is not None:
            self.return_path = return_path(config)

    def stop(self) -> None:
        if self.callbacks is not None:
            self.callbacks.stop()
        if self.poller is not None:
            self.poller.join(timeout=30)

    def _apply(self, receipts: list[Receipt]) -> None:
        """Record callbacks' receipts (in the listener's worker thread)."""
        tally = record(self.ledger, receipts, self.policy())
        self.metrics.tally(tally, self.metrics.callbacks)

    def _poll(self) -> None:
        folder = self.config.receipts.bounces
        while folder is not None:
            try:
                tally = read_bounces(
                    folder, self.ledger, self.return_path, self.policy(), self.stopping.is_set
                )
            except Exception as exc:  # the folder or the ledger: said once, tried again later
                problem = str(exc) if isinstance(exc, RenewdError) else repr(exc)
                if problem != self._problem:
                    log.error("bounces: %s", problem)
                self._problem = problem
            else:
                if self._problem:
                    log.info("bounces: %s can be read again", folder)
                self._problem = ""
                self.metrics.tally(tally, self.metrics.bounces)
                for line in tally.problems:
                    log.warning("bounces: %s", line)
            if self.stopping.wait(self.config.receipts.poll_seconds):
                return
            folder = self.config.receipts.bounces
