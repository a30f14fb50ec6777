"""CPU per broker message, kombu's Redis transport against ours (shop/events/broker.py).

    PYTHONPATH=. .venv/bin/python bench/broker.py

Publishes 3,000 small messages to a throw-away queue on the test broker (Redis DB 14), then
consumes and acknowledges them, and prints this process's CPU per message for each transport.
Prints only; nothing is written.
"""

import os
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django

django.setup()

from kombu import Connection, Consumer, Exchange, Producer, Queue  # noqa: E402

from config.celery import app  # noqa: E402

TRANSPORTS = ("kombu.transport.redis:Transport", "shop.events.broker:Transport")
MESSAGES = 3000


def measure(transport: str) -> tuple[float, float]:
    with Connection(app.conf.broker_url, transport=transport) as conn:
        channel = conn.channel()
        queue = Queue(f"bench-broker-{uuid.uuid4().hex}", Exchange("", type="direct")).bind(channel)
        queue.declare()
        producer = Producer(channel)
        received = []

        def on_message(body, message):
            received.append(body["n"])
            message.ack()

        started = time.process_time()
        for n in range(MESSAGES):
            producer.publish({"n": n}, routing_key=queue.name, serializer="json")
        published = time.process_time()
        with Consumer(channel, queues=[queue], callbacks=[on_message], accept=["json"]):
            while len(received) < MESSAGES:
                conn.drain_events(timeout=5)
        consumed = time.process_time()
        queue.delete()
    return (published - started) / MESSAGES * 1e6, (consumed - published) / MESSAGES * 1e6


if __name__ == "__main__":
    for _round in range(2):
        for transport in TRANSPORTS:
            publish_us, consume_us = measure(transport)
            print(f"{transport:34} publish {publish_us:4.0f} µs, receive + ack {consume_us:4.0f} µs of CPU per message")
