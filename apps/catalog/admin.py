"""Staff tools. Product saves go through the services, so admin edits publish the same events
(and invalidate the same caches) as the API; products are deactivated, never deleted."""

from django import forms
from django.contrib import admin

from apps.catalog import services
from apps.catalog.models import Category, Product, Review
from shop.admin import LargeTableAdminMixin, StaffPermissionsAdminMixin
from shop.security import staff

PRODUCT_FIELDS = ("sku", "name", "description", "price", "currency", "category", "is_active")


class CategoryForm(forms.ModelForm):
    def clean_parent(self):
        parent = self.cleaned_data["parent"]
        refusal = services.category_parent_refusal(category_id=self.instance.pk, parent_id=parent and parent.pk)
        if refusal is not None:
            raise forms.ValidationError(refusal)
        return parent


@admin.register(Category)
class CategoryAdmin(StaffPermissionsAdminMixin, admin.ModelAdmin):
    form = CategoryForm
    list_display = ("name", "slug", "parent")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("parent",)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.has_edit_catalog_permission(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.has_edit_catalog_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # products refer to categories

    def save_model(self, request, obj, form, change):
        services.category_save(category=obj)


class ProductForm(forms.ModelForm):
    """Each field carries the value the page showed (a hidden initial), so the form knows what staff
    changed, not what differs from the row at the moment they save (``ProductAdmin.save_model``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.show_hidden_initial = True

    def clean_sku(self):
        # Normalised as the service stores it, so the form's uniqueness check sees "abc-1" as "ABC-1"
        # (before, the service's refusal of the duplicate was a 500 page).
        return services.sku_normalized(self.cleaned_data["sku"])


@admin.register(Product)
class ProductAdmin(LargeTableAdminMixin, StaffPermissionsAdminMixin, admin.ModelAdmin):
    list_display = ("sku", "name", "price", "currency", "category", "is_active", "updated_at")
    list_filter = ("is_active", "category")
    search_fields = ("sku", "name")
    list_select_related = ("category",)
    form = ProductForm
    fields = PRODUCT_FIELDS
    actions = ("deactivate_selected",)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.has_edit_catalog_permission(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.has_edit_catalog_permission(request)

    def save_model(self, request, obj, form, change):
        # An edit writes only the fields staff changed on the page. Written whole, the form put back
        # whatever others had changed since it was opened: a product deactivated through the API sold
        # again, another staff member's price undone, live at once (events, caches).
        fields = [name for name in PRODUCT_FIELDS if name in form.changed_data] if change else PRODUCT_FIELDS
        data = {name: getattr(obj, name) for name in fields if name != "category"}
        if "category" in fields:
            data["category_id"] = obj.category_id
        saved = services.product_update(product_id=obj.pk, data=data) if change else services.product_create(**data)
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    @admin.action(description="Deactivate selected products", permissions=[staff.EDIT_CATALOG])
    def deactivate_selected(self, request, queryset):
        for product_id in queryset.values_list("id", flat=True):
            services.product_deactivate(product_id=product_id)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("product", "user_id", "rating", "created_at")
    list_filter = ("rating",)
    search_fields = ("product__sku", "user_id", "text")
    list_select_related = ("product",)
    readonly_fields = ("product", "user_id", "rating", "created_at")
