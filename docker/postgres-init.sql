-- One database per bounded context (database-per-service pattern).
CREATE DATABASE shop_accounts;
CREATE DATABASE shop_catalog;
CREATE DATABASE shop_inventory;
CREATE DATABASE shop_orders;
CREATE DATABASE shop_payments;
