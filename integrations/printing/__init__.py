"""Labels at the packing bench: a `Label` laid out once (layout.py), written as TSPL, ZPL or PDF, and sent to the
store's printer (transports.py, cainiao.py) by the outbox sender for channel "print" (sender.py)."""
