from shop.events.admin import register_event_admin

register_event_admin("inventory")
