"""The web explorer (`ganforge serve`): explorer.py decides what an image is, app.py serves it,
page.html shows it. Needs the [serve] extra (starlette, uvicorn), imported only when used."""
