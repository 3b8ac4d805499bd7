from django.apps import AppConfig


class CrmBenchConfig(AppConfig):
    name = "crm_bench"
    verbose_name = "CRM bench (floor, baseline, ablations)"
