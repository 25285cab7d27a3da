"""``lxhub demo``: Jamie's week, replayed through the real receiver and pipeline.

* `hub.demo.journey`: the steps, one per connector (instance config, signed source requests,
  the vendor API routes its connector needs), built from the payloads in ``payloads/``;
* `hub.demo.fakeapi`: the local fake of the vendor APIs (Starlette on 127.0.0.1);
* `hub.demo.runner`: writes the demo's config, starts the fake and the receiver, sends, runs the
  pipeline until quiet, reads the local LRS;
* `hub.demo.timeline`: the statements as a readable timeline.
"""

from __future__ import annotations
