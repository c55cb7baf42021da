"""PRINTING__PRINTERS: each store's printer URL is read into where and how its labels go; a URL that names no
usable printer is refused when the settings are read, not when the first label is due."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.settings import PrintingSettings
from integrations.printing.transports import PrinterAddress


def test_printer_urls_name_the_transport_host_port_folder_and_component_printer() -> None:
    assert PrinterAddress.parse("tspl://192.168.1.50:9100") == PrinterAddress("tspl", "192.168.1.50", 9100)
    assert PrinterAddress.parse("zpl://printer.local") == PrinterAddress("zpl", "printer.local", 9100)
    assert PrinterAddress.parse("cainiao://127.0.0.1?printer=%E6%89%93%E5%8C%85%E5%8F%B01") == PrinterAddress(
        "cainiao", "127.0.0.1", 13528, printer="打包台1")
    assert PrinterAddress.parse("pdf://var/labels").path == "var/labels"
    assert PrinterAddress.parse("pdf:///srv/labels").path == "/srv/labels"
    assert str(PrinterAddress.parse("tspl://10.0.0.5")) == "tspl://10.0.0.5:9100"


@pytest.mark.parametrize("url", ["http://10.0.0.5:9100", "tspl://", "zpl://host:port", "pdf://", "10.0.0.5:9100"])
def test_a_printer_url_that_names_no_usable_printer_is_refused_with_the_store(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PrintingSettings(printers={"SH01": "tspl://10.0.0.5:9100", "GZ01": url})
    assert "GZ01=" in str(refused.value) and "SH01=" not in str(refused.value)
