from patients.selectors import patient_search
from tests.factories import PatientFactory


def test_search_finds_by_id_name_phone_tail_and_id_number(db):
    zhang = PatientFactory(
        patient_id="P20260001", name="张伟", phone="13812348000", national_id="11010519491231002X"
    )
    wang = PatientFactory(patient_id="P20260002", name="王芳", phone="13987654321")
    assert list(patient_search(query="P20260001")) == [zhang]
    assert list(patient_search(query="王")) == [wang]
    assert list(patient_search(query="8000")) == [zhang]
    assert list(patient_search(query="11010519491231002X")) == [zhang]
    assert set(patient_search(query="P2026")) == {zhang, wang}
    assert list(patient_search(query="nobody")) == []
