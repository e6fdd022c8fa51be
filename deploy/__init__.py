"""Package marker: ``deploy/`` is installed as the package ``newsflow_deploy``.

The directory holds declarative files only (templates, Kibana objects, feed lists, the local
stack's Maven files). ``setup.py`` maps it onto ``newsflow_deploy`` so that a wheel ships it as
package data; the code reads it through ``streams.resources``, never by path.
"""
