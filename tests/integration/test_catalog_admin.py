"""Staff's catalog pages: what an edit writes, and what a save refuses (as form errors, never a 500)."""

import signal
from contextlib import contextmanager
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.catalog import services
from apps.catalog.errors import CategoryParentInvalid
from apps.catalog.models import Category, Product
from tests.conftest import CONTEXT_DBS
from tests.factories.catalog import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db(databases=CONTEXT_DBS)


def _form_post(page) -> dict:
    """What the browser posts back for the change page's form as shown: each field with its hidden
    initial (``initial-<name>``), as the page rendered them."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        shown = form[name].value()
        value = "" if shown is None else str(shown)
        if isinstance(shown, bool):
            if shown:
                data[name] = "on"
            data[f"initial-{name}"] = str(shown)
        else:
            data[name] = value
            data[f"initial-{name}"] = value
    return data


def test_a_product_edited_in_the_admin_keeps_what_others_changed_since_the_page_was_opened(admin_browser):
    """Staff open a product's page; meanwhile it is deactivated (the API's DELETE) and repriced; staff
    fix a typo in its name and save. Only the name is written: before, the form wrote every field as
    the page showed it, so the product was sold again at its old price."""
    product = ProductFactory(name="Blue mugg", price=Decimal("10.00"), is_active=True)
    url = f"/admin/catalog/product/{product.pk}/change/"
    data = _form_post(admin_browser.get(url))

    services.product_deactivate(product_id=product.pk)
    services.product_update(product_id=product.pk, data={"price": Decimal("12.00")})
    data["name"] = "Blue mug"
    response = admin_browser.post(url, data)

    assert response.status_code == 302, response.content[:2000]
    product.refresh_from_db()
    assert (product.name, product.is_active, product.price) == ("Blue mug", False, Decimal("12.00"))


def test_a_sku_differing_only_in_case_from_another_is_a_form_error_in_the_admin_not_a_500(admin_browser):
    ProductFactory(sku="ABC-1")
    data = {"sku": "abc-1", "name": "Copy", "description": "", "price": "5.00", "currency": "USD", "is_active": "on"}

    response = admin_browser.post("/admin/catalog/product/add/", data)

    assert response.status_code == 200
    assert "sku" in response.context["adminform"].form.errors
    assert Product.objects.filter(sku__iexact="abc-1").count() == 1


def test_a_category_cannot_be_placed_under_itself_or_one_of_its_subcategories(admin_browser):
    parent = CategoryFactory(slug="kitchen")
    child = CategoryFactory(slug="mugs", parent=parent)
    url = f"/admin/catalog/category/{parent.pk}/change/"

    response = admin_browser.post(url, {"name": parent.name, "slug": parent.slug, "parent": str(child.pk)})

    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    parent.refresh_from_db()
    assert parent.parent_id is None
    parent.parent_id = parent.pk
    with pytest.raises(CategoryParentInvalid):
        services.category_save(category=parent)


@contextmanager
def _at_most(seconds: int):
    """Fail the test, not the run, if the block does not end in time (it looped forever before)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_category_cycle_stored_before_saves_refused_one_does_not_hang_the_product_list():
    """The product list's category filter walks down the tree; a cycle kept it going forever."""
    kitchen = CategoryFactory(slug="kitchen")
    mugs = CategoryFactory(slug="mugs", parent=kitchen)
    Category.objects.filter(pk=kitchen.pk).update(parent=mugs)  # as a save made before the check
    ProductFactory(category=mugs, name="Mug")

    with _at_most(20):
        response = APIClient().get("/api/v1/products?category=kitchen")

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["data"]] == ["Mug"]
