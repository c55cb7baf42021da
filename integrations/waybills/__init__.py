"""E-waybills from the store's provider (Cainiao LINK or Kuaidi100), taken through the outbox (channel "waybill")."""
