"""Reading this process's Prometheus exposition as a scraper would."""

from prometheus_client.parser import text_string_to_metric_families

from shop.observability import metrics


def scraped_value(name: str, **labels) -> float | None:
    """One sample from this process's exposition (scrape-time gauges recomputed), or None."""
    metrics.forget_scrape_cache()
    for family in text_string_to_metric_families(metrics.render()[0].decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None
