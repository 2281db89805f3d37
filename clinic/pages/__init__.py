"""Pages of the staff web UI that show what several apps wrote about a patient or a visit.

Apps depend one way (patients ← screening ← ai_engine ← reports, DESIGN §1), so a page that
shows a patient's screenings and reports, or a visit's photos, AI results and reports, cannot
live in the earlier app: it lives here, in the site shell, which may import every app. Each
app's own views keep what needs only that app and earlier ones; writes still go through each
app's services.
"""
