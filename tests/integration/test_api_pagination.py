import pytest
from django.contrib.auth import get_user_model

from tests.conftest import CONTEXT_DBS

pytestmark = [pytest.mark.urls("tests.support.error_urls"), pytest.mark.django_db(databases=CONTEXT_DBS)]


@pytest.fixture
def users():
    User = get_user_model()
    User.objects.bulk_create([User(email=f"user{i:02d}@example.com") for i in range(25)])


def test_first_page(api_client, users):
    body = api_client.get("/api/v1/users?limit=10").json()
    assert body["success"] is True
    assert [u["email"] for u in body["data"]][:2] == ["user00@example.com", "user01@example.com"]
    block = body["pagination"]
    assert isinstance(block.pop("nextCursor"), str)
    assert block == {"page": 1, "limit": 10, "total": 25, "totalExact": True, "pages": 3, "hasNext": True,
                     "hasPrev": False}  # fmt: skip


def test_last_partial_page(api_client, users):
    response = api_client.get("/api/v1/users?page=3&limit=10")
    body = response.json()
    assert len(body["data"]) == 5
    assert body["pagination"]["hasNext"] is False and body["pagination"]["hasPrev"] is True
    assert response["X-Total-Count"] == "25" and response["X-Page-Count"] == "3"


def test_page_past_the_end_is_empty_not_error(api_client, users):
    body = api_client.get("/api/v1/users?page=9&limit=10").json()
    assert body["data"] == []
    assert body["pagination"]["page"] == 9 and body["pagination"]["hasNext"] is False


def test_empty_collection(api_client):
    body = api_client.get("/api/v1/users").json()
    assert body["pagination"] == {"page": 1, "limit": 10, "total": 0, "totalExact": True, "pages": 0,
                                  "hasNext": False, "hasPrev": False, "nextCursor": None}  # fmt: skip


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "page=0", "page=-1", "page=x"])
def test_bad_paging_values_are_400(api_client, users, query):
    response = api_client.get(f"/api/v1/users?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_limit_100_is_allowed(api_client, users):
    assert api_client.get("/api/v1/users?limit=100").json()["pagination"]["limit"] == 100


# --- at scale: bounded totals, keyset cursors, no deep OFFSET ----------------------------------------


def test_total_beyond_the_count_limit_is_a_flagged_lower_bound(api_client, users, settings):
    settings.PAGINATION_COUNT_LIMIT = 10
    response = api_client.get("/api/v1/users?limit=4")
    block = response.json()["pagination"]
    assert (block["total"], block["totalExact"], block["pages"], block["hasNext"]) == (10, False, 3, True)
    assert response["X-Total-Count"] == "10+"


def test_count_reads_at_most_the_limit_plus_one_row(api_client, users, settings):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    settings.PAGINATION_COUNT_LIMIT = 10
    with CaptureQueriesContext(connections["accounts"]) as queries:
        api_client.get("/api/v1/users")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 11" in sql for sql in counts), counts


def test_cursor_walks_the_whole_list_in_order_beyond_the_count_limit(api_client, users, settings):
    settings.PAGINATION_COUNT_LIMIT = 10
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = api_client.get("/api/v1/users", query).json()
        seen += [u["email"] for u in body["data"]]
        pages += 1
        assert body["pagination"]["page"] == (None if cursor else 1)
        cursor = body["pagination"]["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"user{i:02d}@example.com" for i in range(25)]
    assert pages == 4 and body["pagination"]["hasNext"] is False and body["pagination"]["hasPrev"] is True


def test_page_numbers_stop_at_the_count_limit_with_a_pointer_to_the_cursor(api_client, users, settings):
    settings.PAGINATION_COUNT_LIMIT = 10
    assert api_client.get("/api/v1/users?page=2&limit=5").status_code == 200
    response = api_client.get("/api/v1/users?page=3&limit=5")  # rows 11-15: past what is counted
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PAGE_TOO_DEEP"
    assert "cursor" in response.json()["error"]["message"]


@pytest.mark.parametrize("cursor", ["garbage", "eyJrIjpbImVtYWlsIl19:1abc:xyz"])
def test_a_forged_cursor_is_400(api_client, users, cursor):
    response = api_client.get("/api/v1/users", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"cursor": ["Invalid cursor."]}
