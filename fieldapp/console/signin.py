"""Console sign-in and sign-out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from fieldapp.console import accounts
from fieldapp.db import get_db
from fieldapp.i18n import local_path

bp = Blueprint("console_auth", __name__, url_prefix="/console")


class LoginForm(FlaskForm):
    """User name and password; Flask-WTF adds the CSRF token."""

    name = StringField(_l("User name"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; failures are throttled per account and per address."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        ip = accounts.client_ip()
        try:
            user = accounts.authenticate(get_db(), form.name.data, form.password.data, ip)
        except accounts.TooManyFailures:
            user = None
            form.form_errors.append(
                _("Too many failed sign-ins. Wait 15 minutes, or ask an administrator.")
            )
            status = 429
        else:
            if user is None:
                form.form_errors.append(_("Wrong user name or password."))
                status = 401
        if user is not None:
            accounts.login_user(user)
            # Only a path on this site: never send a fresh login to another origin.
            return redirect(local_path(request.args.get("next"), url_for("console.dashboard")))
    elif request.method == "POST":
        status = 400
    return render_template("console/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out (POST only, with CSRF, so a link cannot sign anyone out)."""
    user = accounts.current_user()
    if user is not None:
        accounts.audit_action("logout", user.name)
    accounts.logout_user()
    flash(_("You are signed out."))
    return redirect(url_for("console_auth.login"))
