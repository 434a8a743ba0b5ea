"""One outbox sender as its own process, for the fault-injection suite (``tests/test_faults.py``).

    python tests/fault_sender.py DATABASE_URL SMTP_URL --lease 1.5 --batch 10 --deadline 60

Delivers with :func:`frontline.mail.delivery.deliver_pending` (the product's sender: claims, lease
heartbeat, fencing) until no message is pending or sending any more, or the deadline passes. A server
that cannot be reached (killed) is retried after a short pause, like the scheduled ``deliver-mail`` run
would. Prints one JSON line with its totals when it ends (a sender killed with SIGKILL prints nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("smtp_url")
    parser.add_argument("--lease", type=float, default=1.5)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()

    from sqlmodel import Session, col, select

    from frontline.mail.delivery import DeliveryResult, deliver_pending
    from frontline.mail.transport import SMTPTransport, TransportUnavailable
    from models import OutboundMessage, get_engine

    engine = get_engine(args.database_url)
    total = DeliveryResult()
    unavailable = 0
    stop = time.monotonic() + args.deadline
    while time.monotonic() < stop:
        transport = SMTPTransport(args.smtp_url, rate_per_second=0, timeout=5)
        try:
            total.add(
                deliver_pending(
                    engine,
                    transport,
                    batch_size=args.batch,
                    max_batches=1,
                    lease=timedelta(seconds=args.lease),
                    backoff_seconds=0.05,
                    max_attempts=10**6,
                )
            )
        except TransportUnavailable:
            unavailable += 1
            time.sleep(0.1)
        finally:
            transport.close()
        with Session(engine) as session:
            open_rows = session.exec(
                select(OutboundMessage.id).where(col(OutboundMessage.state).in_(("pending", "sending"))).limit(1)
            ).first()
        if open_rows is None:
            break
        time.sleep(0.02)
    print(json.dumps({**total.as_dict(), "unavailable": unavailable}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
