from django.urls import path

from apps.payments import views

urlpatterns = [
    path("orders/<uuid:order_id>/payments", views.OrderPaymentsView.as_view(), name="order-payments"),
    path("payments/<uuid:payment_id>/refund", views.PaymentRefundView.as_view(), name="payment-refund"),
    path("payments/webhooks/stripe", views.StripeWebhookView.as_view(), name="payments-webhook-stripe"),
]
