"""Consumers of the baseline: one group, ``group_send`` per event, each member forwards it.

This is the earlier design's activity feed reduced to its fan-out path: the
ingest consumer numbers each event and calls ``group_send`` once per event;
every activity consumer joined the group on connect and forwards each message
as its own WebSocket frame. Nothing is stored (the baseline skips the database
jacmon writes to, which favours it). Frames use jacmon's envelope so the same
load clients count and time them.
"""

import json
import time

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "activity"
#: Sequence number of the last event published (one process, one event loop).
STATE = {"seq": 0}


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class ActivityConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        seq = STATE["seq"]
        await self.send(
            text_data=_dumps(
                {
                    "stream": "activity",
                    "type": "hello",
                    "seq": seq,
                    "ts": time.time(),
                    "data": {"seq": seq},
                }
            )
        )

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        # Clients of the benchmark send nothing; a real one would ping.
        return

    async def activity_event(self, message):
        await self.send(text_data=message["frame"])


class IngestConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        events = json.loads(text_data or bytes_data)
        for event in events:
            STATE["seq"] += 1
            seq = STATE["seq"]
            frame = _dumps(
                {
                    "stream": "activity",
                    "type": "events",
                    "seq": seq,
                    "ts": time.time(),
                    "data": {"events": [{"seq": seq, **event}]},
                }
            )
            await self.channel_layer.group_send(GROUP, {"type": "activity.event", "frame": frame})
        ack = {"accepted": len(events), "duplicates": 0, "rejected": [], "last_seq": STATE["seq"]}
        await self.send(
            text_data=_dumps(
                {
                    "stream": "ingest",
                    "type": "ack",
                    "seq": STATE["seq"],
                    "ts": time.time(),
                    "data": ack,
                }
            )
        )
