"""The broker transport keeps one Redis client object per channel (shop/events/broker.py)."""

import uuid

from kombu import Connection, Consumer, Exchange, Producer, Queue

from config.celery import app
from shop.events.broker import Channel


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
