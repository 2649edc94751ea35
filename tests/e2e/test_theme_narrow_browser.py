"""The dark theme toggle (remembered across reloads) and the app on a 390 px wide phone screen."""

from __future__ import annotations

from tests.e2e.conftest import AppServer, save_screenshot, wait_for_dash


def theme(page) -> str | None:
    return page.evaluate("() => document.documentElement.getAttribute('data-bs-theme')")


def test_the_dark_theme_is_toggled_by_keyboard_and_remembered(page, app_server: AppServer):
    page.goto(app_server.url + "/?dates=all")
    wait_for_dash(page)
    toggle = page.get_by_role("button", name="Dark theme")
    assert theme(page) == "light"
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.focus()
    page.keyboard.press("Enter")
    assert theme(page) == "dark"
    assert toggle.get_attribute("aria-pressed") == "true"
    body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert body == "rgb(20, 24, 29)"
    save_screenshot(page, "kpi-dark")
    page.reload()
    wait_for_dash(page)
    assert theme(page) == "dark"  # remembered in this browser
    assert page.get_by_role("button", name="Dark theme").get_attribute("aria-pressed") == "true"
    page.get_by_role("button", name="Dark theme").click()
    assert theme(page) == "light"


def test_a_phone_screen_scrolls_the_tabs_instead_of_the_page(browser, app_server: AppServer):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(app_server.url + "/?dates=all")
        wait_for_dash(page)
        tabs = page.locator(".nav-tabs")
        tops = {round(box["y"]) for box in (t.bounding_box() for t in page.locator(".nav-tabs .nav-item").all())}
        assert len(tops) == 1, "the tabs stay on one row"
        assert tabs.evaluate("el => el.scrollWidth > el.clientWidth"), "the tab row scrolls sideways"
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page itself is {overflow}px wider than the screen"
        save_screenshot(page, "kpi-narrow")
    finally:
        context.close()
    assert errors == []
