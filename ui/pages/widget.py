"""The customer chat for an iframe on a company's site (``/widget``): compact, no page chrome."""

from ui.chat import main

main(embedded=True)
