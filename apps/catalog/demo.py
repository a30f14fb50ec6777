"""A deterministic, realistic demo catalog: 4 departments, 12 categories, N products.

Product ``i`` is always the same product (same SKU, name, price), so seeding is repeatable
and ``--products N`` grows the catalog without changing what is already there.
"""

import random
from collections.abc import Iterator
from decimal import Decimal

# department → (category slug, name, price range, nouns)
DEPARTMENTS = {
    ("electronics", "Electronics"): [
        ("phones", "Phones", (149, 1299), ["Smartphone", "Phone Case", "Charger", "Screen Protector"]),
        ("laptops", "Laptops", (399, 2999), ["Laptop", "Ultrabook", "Laptop Stand", "Docking Station"]),
        ("audio", "Audio", (19, 499), ["Headphones", "Earbuds", "Speaker", "Soundbar"]),
    ],
    ("home-kitchen", "Home & Kitchen"): [
        ("cookware", "Cookware", (9, 249), ["Frying Pan", "Saucepan", "Dutch Oven", "Knife Set"]),
        ("furniture", "Furniture", (49, 1499), ["Armchair", "Bookshelf", "Desk", "Side Table"]),
        ("lighting", "Lighting", (12, 399), ["Desk Lamp", "Floor Lamp", "Pendant Light", "LED Strip"]),
    ],
    ("sports-outdoors", "Sports & Outdoors"): [
        ("camping", "Camping", (15, 699), ["Tent", "Sleeping Bag", "Camp Stove", "Headlamp"]),
        ("fitness", "Fitness", (9, 899), ["Yoga Mat", "Kettlebell", "Dumbbell Set", "Rowing Machine"]),
        ("cycling", "Cycling", (19, 2499), ["Road Bike", "Helmet", "Bike Light", "Saddle Bag"]),
    ],
    ("fashion", "Fashion"): [
        ("shoes", "Shoes", (29, 349), ["Running Shoes", "Sneakers", "Boots", "Sandals"]),
        ("bags", "Bags", (19, 599), ["Backpack", "Tote Bag", "Duffel Bag", "Messenger Bag"]),
        ("watches", "Watches", (39, 1999), ["Chronograph", "Dive Watch", "Smartwatch", "Field Watch"]),
    ],
}
BRANDS = ["Northwind", "Acme", "Lumen", "Granite", "Bluefin", "Aurora", "Kestrel", "Orbit", "Summit", "Vela"]
ADJECTIVES = ["Classic", "Pro", "Compact", "Ultra", "Essential", "Premium", "Lite", "Travel", "Studio", "Max"]
COLOURS = ["black", "white", "graphite", "navy", "olive", "sand", "red", "silver"]


def categories() -> list[dict]:
    rows = []
    for (slug, name), children in DEPARTMENTS.items():
        rows.append({"slug": slug, "name": name, "parent": None})
        rows += [{"slug": child, "name": child_name, "parent": slug} for child, child_name, _, _ in children]
    return rows


_LEAVES = [leaf for children in DEPARTMENTS.values() for leaf in children]


def product(index: int) -> dict:
    rng = random.Random(index)
    slug, _, (low, high), nouns = _LEAVES[index % len(_LEAVES)]
    brand, adjective, noun, colour = rng.choice(BRANDS), rng.choice(ADJECTIVES), rng.choice(nouns), rng.choice(COLOURS)
    price = Decimal(rng.randint(low, high)) - Decimal("0.01")
    return {
        "sku": f"DEMO-{index:06d}",
        "name": f"{brand} {adjective} {noun}",
        "description": f"The {brand} {adjective} {noun.lower()} in {colour}. Demo item #{index}.",
        "price": max(price, Decimal("0.99")),
        "currency": "USD",
        "category": slug,
    }


def products(count: int, *, batch: int) -> Iterator[list[dict]]:
    for start in range(1, count + 1, batch):
        yield [product(i) for i in range(start, min(start + batch, count + 1))]
