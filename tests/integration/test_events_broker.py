"""The broker transport keeps one Redis client object per channel (shop/events/broker.py)."""

import json
import uuid

import redis
from django.conf import settings
from django.test import override_settings
from kombu import Connection, Consumer, Exchange, Producer, Queue

from config.celery import app
from shop.events import broker
from shop.events.broker import Channel
from shop.events.envelope import Envelope
from shop.events.relay import send_deliveries


def _counting_client_objects(channel: Channel) -> list:
    made = []
    create = channel._create_client

    def counted(*args, **kwargs):
        client = create(*args, **kwargs)
        made.append(kwargs.get("asynchronous", args[0] if args else False))
        return client

    channel._create_client = counted
    return made


def test_publishing_and_acknowledging_many_messages_builds_one_client_object_per_channel():
    queue = Queue(f"test-broker-{uuid.uuid4().hex}", Exchange("", type="direct"), routing_key=None)
    with Connection(app.conf.broker_url, transport=app.conf.broker_transport) as conn:
        channel = conn.channel()
        assert isinstance(channel, Channel)
        made = _counting_client_objects(channel)
        producer = Producer(channel)
        queue = queue.bind(channel)
        queue.declare()
        for n in range(20):
            producer.publish({"n": n}, routing_key=queue.name, serializer="json")
        received = []

        def on_message(body, message):
            received.append(body["n"])
            message.ack()

        with Consumer(channel, queues=[queue], callbacks=[on_message], accept=["json"]):
            while len(received) < 20:
                conn.drain_events(timeout=5)
        queue.delete()

    assert sorted(received) == list(range(20))
    assert [asynchronous for asynchronous in made if not asynchronous] == [False]


def test_a_channel_whose_pool_was_replaced_gets_a_client_on_the_new_pool():
    with Connection(app.conf.broker_url, transport=app.conf.broker_transport) as conn:
        channel = conn.channel()
        with channel.conn_or_acquire() as first:
            assert first.ping()
        channel._disconnect_pools()
        with channel.conn_or_acquire() as second:
            assert second.ping()
        assert second is not first
        assert second.connection_pool is channel.pool


def test_a_delivery_message_shows_monitoring_its_consumers_and_event_ids_but_not_the_event_data():
    queue = f"test-argsrepr-{uuid.uuid4().hex}"
    data = {"customerEmail": "ann@example.com"}
    wire = Envelope(type="order.created", version=1, aggregate_id="a", data=data).to_wire()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        send_deliveries(queue, [("orders.some_consumer", wire)])
        [raw] = client.lrange(queue, 0, -1)
    finally:
        client.delete(queue)
    headers = json.loads(raw)["headers"]
    assert headers["argsrepr"] == f"orders.some_consumer:{wire['id']}"
    assert "ann@example.com" not in json.dumps(headers)


def test_a_delivery_reaches_its_redis_queue_by_name_without_declaring_it(monkeypatch):
    """On Redis a publish pushes to the queue's list by name; kombu's per-publish declaration check
    cost a fifth of the publish, so the relay skips it on this transport (and only there)."""
    import kombu.common

    declared = []
    check = kombu.common._imaybe_declare
    monkeypatch.setattr(kombu.common, "_imaybe_declare", lambda *a, **k: declared.append(a[0]) or check(*a, **k))
    queue = f"test-undeclared-{uuid.uuid4().hex}"
    wire = Envelope(type="order.created", version=1, aggregate_id="a", data={}).to_wire()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        send_deliveries(queue, [("orders.some_consumer", wire)])
        send_deliveries(queue, [("orders.some_consumer", wire)])
        waiting = client.llen(queue)
    finally:
        client.delete(queue)

    assert waiting == 2 and declared == []
    assert broker.declare_on_publish() == []
    with override_settings(CELERY_BROKER_TRANSPORT="amqp"):
        assert broker.declare_on_publish() is None  # RabbitMQ drops a message to an undeclared queue
