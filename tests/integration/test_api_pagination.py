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
    assert body["pagination"] == {"page": 1, "limit": 10, "total": 25, "pages": 3, "hasNext": True, "hasPrev": False}


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
    assert body["pagination"] == {"page": 1, "limit": 10, "total": 0, "pages": 0, "hasNext": False, "hasPrev": False}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "page=0", "page=-1", "page=x"])
def test_bad_paging_values_are_400(api_client, users, query):
    response = api_client.get(f"/api/v1/users?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_limit_100_is_allowed(api_client, users):
    assert api_client.get("/api/v1/users?limit=100").json()["pagination"]["limit"] == 100
